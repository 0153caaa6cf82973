/** Prometheus metrics of one service instance, in a registry of its own. */
import type { CorpusStats } from '../corpus/ad-corpus';
import type { UserHistoryStore } from '../history';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FeedbackEvent, RetrieveResult } from '../orchestration/types';
import type { BatcherStats } from '../request-batcher';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly retrieveSeconds = new Histogram({
    name: 'cangen_retrieve_duration_seconds',
    help: 'Retrieve latency inside the pipeline, per scenario',
    labelNames: ['scenario'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly generatorSeconds = new Histogram({
    name: 'cangen_generator_duration_seconds',
    help: 'Time until each generator answered or was cut off, per scenario, generator and status',
    labelNames: ['scenario', 'generator', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly candidates = new Counter({
    name: 'cangen_candidates_total',
    help: 'Candidates returned, per scenario and source generator',
    labelNames: ['scenario', 'source'],
    registers: [this.registry],
  });
  readonly quotaShare = new Gauge({
    name: 'cangen_quota_share',
    help: 'Share of k given to each generator in the latest request of a scenario',
    labelNames: ['scenario', 'generator'],
    registers: [this.registry],
  });
  readonly feedback = new Counter({
    name: 'cangen_feedback_events_total',
    help: 'Feedback events applied, per scenario and type',
    labelNames: ['scenario', 'type'],
    registers: [this.registry],
  });
  readonly feedbackRejected = new Counter({
    name: 'cangen_feedback_rejected_total',
    help: 'Feedback events refused, per reason (bad_signature, expired, duplicate, rate_limited)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'cangen_http_requests_total',
    help: 'HTTP requests, per route and status code',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  readonly partialAnswers = new Counter({
    name: 'cangen_generator_partial_total',
    help: 'Answers of a generator that missed shards of a sharded corpus (a cluster router), per scenario and generator',
    labelNames: ['scenario', 'generator'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'cangen_errors_total',
    help: 'Failed requests, per route and error code',
    labelNames: ['route', 'code'],
    registers: [this.registry],
  });
  /** The corpus's figures, read by prom-client at every scrape (watchCorpus). */
  private corpusStats: (() => CorpusStats) | undefined;
  private readonly corpusGauge = (name: string, help: string, read: (s: CorpusStats) => number) => {
    const stats = () => this.corpusStats?.();
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect(this: Gauge) {
        const s = stats();
        if (s) this.set(read(s));
      },
    });
  };
  readonly corpusAds = this.corpusGauge('cangen_corpus_ads', 'Ads in the corpus', (s) => s.ads);
  readonly catalogSequence = this.corpusGauge('cangen_catalog_sequence', 'Sequence of the last write committed to the catalog', (s) => s.head);
  readonly catalogBytes = this.corpusGauge('cangen_catalog_bytes', 'Size of the catalog on disk (0 in memory)', (s) => s.catalogBytes);
  readonly snapshotAge = this.corpusGauge('cangen_snapshot_age_seconds', 'Age of the newest index snapshot (-1: none yet)', (s) => s.snapshotAgeSeconds ?? -1);
  readonly replayLag = this.corpusGauge('cangen_snapshot_lag_writes', 'Writes committed after the newest snapshot: what a restart replays', (s) => s.replayLag);

  readonly historyEvents = new Counter({
    name: 'cangen_history_events_total',
    help: 'Events stored in user histories (POST /v1/events)',
    registers: [this.registry],
  });
  readonly historyErrors = new Counter({
    name: 'cangen_history_errors_total',
    help: 'Failed user-history store calls, per operation (append, read) and error code',
    labelNames: ['operation', 'code'],
    registers: [this.registry],
  });
  private histories: () => UserHistoryStore | undefined = () => undefined;
  readonly historyUp = (() => {
    const store = () => this.histories();
    return new Gauge({
      name: 'cangen_history_store_up',
      help: 'Whether the user-history store can take and serve events (1) or not (0)',
      registers: [this.registry],
      collect(this: Gauge) {
        this.set(store()?.health().healthy ? 1 : 0);
      },
    });
  })();

  /** Each index's batching figures (watchBatching), read at every scrape. */
  private batching: () => Record<string, Readonly<BatcherStats>> = () => ({});
  private readonly batchingCounter = (name: string, help: string, read: (s: BatcherStats) => number) => {
    const stats = () => this.batching();
    const counted = new Map<string, number>();
    return new Counter({
      name,
      help,
      labelNames: ['index'],
      registers: [this.registry],
      collect(this: Counter<'index'>) {
        for (const [index, s] of Object.entries(stats())) {
          const now = read(s);
          this.inc({ index }, now - (counted.get(index) ?? 0));
          counted.set(index, now);
        }
      },
    });
  };
  readonly searchCalls = this.batchingCounter('cangen_search_calls_total', 'Native search calls per index: concurrent searches batched together share one', (s) => s.calls);
  readonly searches = this.batchingCounter('cangen_searches_total', 'Searches answered per index (searches / calls is the mean batch)', (s) => s.requests);

  /** Where the batching counters read each index's figures at each scrape. */
  watchBatching(stats: () => Record<string, Readonly<BatcherStats>>): void {
    this.batching = stats;
  }

  /** Where the history gauge finds the store at each scrape. */
  watchHistories(store: () => UserHistoryStore | undefined): void {
    this.histories = store;
  }

  /** Where the corpus gauges read their figures at each scrape. */
  watchCorpus(stats: () => CorpusStats): void {
    this.corpusStats = stats;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'cangen_' });
  }

  observeRetrieve(result: RetrieveResult): void {
    const scenario = result.scenario;
    this.retrieveSeconds.observe({ scenario }, result.ms / 1000);
    for (const g of result.generators) {
      if (g.status !== 'skipped') this.generatorSeconds.observe({ scenario, generator: g.name, status: g.status }, g.ms / 1000);
      if (g.kept > 0) this.candidates.inc({ scenario, source: g.name }, g.kept);
      if (g.missingShards) this.partialAnswers.inc({ scenario, generator: g.name });
      this.quotaShare.set({ scenario, generator: g.name }, g.quota / result.k);
    }
  }

  observeFeedback(event: FeedbackEvent): void {
    this.feedback.inc({ scenario: event.scenario, type: event.type });
  }
}
