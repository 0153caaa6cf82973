/**
 * Prometheus metrics of the sharded corpus, in a registry of their own: per replica its applied
 * sequence, lag (messages and seconds), updates applied, dead letters, searches, health and
 * snapshot age, read
 * at every scrape; per router its searches, partial answers, hedges and failovers, and the
 * fan-out latency per shard and outcome.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors';
import type { ClusterEngine } from './cluster-engine';
import type { ShardReplica } from './replica';
import type { ClusterRouter } from './router';

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1];

export class ClusterMetrics {
  private readonly replicas = new Set<ShardReplica>();
  private router: ClusterRouter | undefined;
  private readonly shardSeconds: Histogram;
  private readonly searchSeconds: Histogram;

  /** `registry`: where the metrics go (default: a registry of their own), e.g. a pipeline router's service metrics. */
  constructor(readonly registry: Registry = new Registry()) {
    this.shardSeconds = new Histogram({
      name: 'cangen_router_shard_duration_seconds',
      help: 'Time until each shard answered or was given up, per shard and outcome (answered, hedged, missing)',
      labelNames: ['shard', 'outcome'],
      buckets: latencyBuckets,
      registers: [registry],
    });
    this.searchSeconds = new Histogram({
      name: 'cangen_router_search_duration_seconds',
      help: 'Time of a routed search, fan-out and merge, per completeness (full, partial)',
      labelNames: ['answer'],
      buckets: latencyBuckets,
      registers: [registry],
    });
    const perReplica = (name: string, help: string, read: (r: ShardReplica) => number) => new Gauge({
      name, help, labelNames: ['shard', 'replica'], registers: [this.registry],
      collect() {
        this.reset();
        for (const replica of replicasOf()) this.set({ shard: String(replica.shard), replica: replica.replicaId }, read(replica));
      },
    });
    const replicasOf = () => [...this.replicas].filter((r) => !r.index.closed);
    perReplica('cangen_shard_applied_sequence', 'The last log sequence of its shard the replica applied', (r) => r.applied);
    perReplica('cangen_shard_lag_messages', 'Log messages of its shard stored and not yet applied', (r) => r.stats().lagMessages);
    perReplica('cangen_shard_lag_seconds', 'While behind: seconds since the log stored the last message the replica applied', (r) => r.stats().lagSeconds);
    perReplica('cangen_shard_updates_applied', 'Log messages applied since the replica started', (r) => r.stats().updatesApplied);
    perReplica('cangen_shard_dead_letters', 'Log messages the replica dead-lettered since it started', (r) => r.stats().deadLetters);
    perReplica('cangen_shard_searches', 'Shard searches the replica answered since it started', (r) => r.stats().searches);
    perReplica('cangen_shard_serving', '1 when the replica serves, 0 while it catches up or stops', (r) => (r.health === 'serving' ? 1 : 0));
    perReplica('cangen_shard_ads', 'Live ads in the replica\'s index', (r) => r.index.size);
    perReplica('cangen_shard_snapshot_age_seconds', 'Age of the newest snapshot of the shard the replica knows of (-1: none)', (r) => r.stats().snapshotAgeSeconds);
    perReplica('cangen_shard_snapshot_sequence', 'Log sequence the newest known snapshot of the shard includes (-1: none)', (r) => r.stats().snapshotSequence);
    perReplica('cangen_shard_snapshots_taken', 'Snapshots the replica stored since it started', (r) => r.stats().snapshotsTaken);
    perReplica('cangen_shard_snapshot_fallbacks', 'Snapshots passed over at start (failed checksum, refused file, another kind)', (r) => r.stats().snapshotFallbacks);
  }

  /** Reports a replica until it is closed. */
  watchReplica(replica: ShardReplica): void {
    this.replicas.add(replica);
  }

  /** Reports a router's counters and, from now on, its searches' latencies (one router per registry). */
  watchRouter(router: ClusterRouter): void {
    if (this.router) throw new InvalidArgumentError('Expected one router per ClusterMetrics (its metrics carry no router label): make a second ClusterMetrics');
    this.router = router;
    const registry = this.registry;
    const counter = (name: string, help: string, read: () => number) => new Counter({
      name, help, registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
    counter('cangen_router_searches_total', 'Routed searches', () => router.stats().searches);
    counter('cangen_router_partial_answers_total', 'Routed searches answered without every shard', () => router.stats().partialAnswers);
    counter('cangen_router_missing_shard_answers_total', 'Shard answers missing from partial answers', () => router.stats().missingShardAnswers);
    counter('cangen_router_hedges_sent_total', 'Hedged second requests sent', () => router.stats().hedgesSent);
    counter('cangen_router_hedges_won_total', 'Shard answers that came from a hedged request', () => router.stats().hedgesWon);
    counter('cangen_router_failovers_total', 'Requests re-sent to another replica after a refusal or no responders', () => router.stats().failovers);
    router.observe((result) => {
      this.searchSeconds.observe({ answer: result.partial ? 'partial' : 'full' }, result.ms / 1000);
      for (const shard of result.shards) {
        if (shard.skipped) continue;
        const outcome = !shard.answered ? 'missing' : shard.hedged ? 'hedged' : 'answered';
        this.shardSeconds.observe({ shard: String(shard.shard), outcome }, shard.ms / 1000);
      }
    });
  }

  /** Reports a pipeline router: its router's metrics, and how far its catalog and the catalog applier are. */
  watchPipeline(cluster: ClusterEngine): void {
    this.watchRouter(cluster.router);
    const gauge = (name: string, help: string, read: () => number) => new Gauge({
      name, help, registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
    gauge('cangen_catalog_applied_sequence', 'The last catalog sequence this router applied to its corpus', () => cluster.catalog.applied);
    gauge('cangen_catalog_sent_sequence', 'The last catalog sequence the catalog applier recorded as in the shard logs', () => cluster.sentThrough);
    gauge('cangen_catalog_applier_holding', '1 while this router holds the catalog applier lease', () => (cluster.applier.stats().holding ? 1 : 0));
    gauge('cangen_catalog_malformed', 'Catalog messages this router could not decode (skipped)', () => cluster.catalog.stats().malformed);
    gauge('cangen_catalog_refused', 'Catalog writes the corpus refused (refused alike by every router)', () => cluster.catalog.stats().refused);
  }

  /** The text a Prometheus scrape reads. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
