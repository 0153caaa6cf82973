/**
 * The router: scatter-gather of a search over the shards. For each shard it asks one serving
 * replica (fewest searches in flight from this router, then the most caught up; a replica that
 * just failed goes last), optionally hedges with a second replica after `hedgeAfterMs`, fails
 * over at once to the next replica when one refuses or has no responders, and stops waiting at
 * the deadline: shards without an answer by then are reported (`partial`, `missingShards`), and
 * the answer merges the shards that did answer. `readAfter` (a LogPosition from CorpusLog) makes
 * each shard's replica answer only once it has applied that write.
 */
import type { NatsConnection } from 'nats';
import type { EligibilityFilter } from '../ad-index';
import type { BlendOptions } from '../scorer';
import { DimensionMismatchError, InvalidArgumentError, NonFiniteError } from '../errors';
import { UnknownHeadError, UnknownScenarioError } from '../scorer/errors';
import type { SearchResults } from '../results';
import { maxK } from '../defaults';
import { integerIn, invalid, knownOptions, wholeRows } from '../validate';
import type { LogPosition } from './log-position';
import { mergeShardResults } from './merge-shards';
import { shardOfAdvertiser } from './shard-hash';
import { MembershipView, type MemberEntry } from './membership';
import { checkName } from './names';
import { decodeSearchReply, encodeSearchRequest, type ShardSearchReply } from './search-codec';
import { noShardMap, readShardMap, type ShardMap } from './shard-map';
import { ClusterError, NoShardMapError } from './errors';
import type { Metric } from '../metric';
import { isTransient } from './transient';

export interface RouterOptions {
  cluster: string;
  /** Default time budget of a search in ms (default 200). */
  deadlineMs?: number;
  /** Default delay before a hedged second request to another replica of a shard that has not answered (0, default: no hedging). */
  hedgeAfterMs?: number;
  /** How often to look for the shard map while none is known (default 1000 ms). */
  shardMapPollMs?: number;
}

export interface ClusterSearchOptions {
  deadlineMs?: number;
  hedgeAfterMs?: number;
  /** Read-your-writes: each shard answers only after applying its sequence in this position. */
  readAfter?: LogPosition;
  filter?: EligibilityFilter;
  /**
   * Rank with the replicas' learned scorer instead of their index: `queries` are then users of the
   * scorer's userDim, blended by `{ scenario }`, `{ weights }` or the model's default (`{}`).
   * Only replicas started with a scorer are asked.
   */
  scorer?: BlendOptions;
}

export interface ShardOutcome {
  shard: number;
  answered: boolean;
  /** The replica whose answer was used. */
  replicaId?: string;
  /** Replicas asked (more than one after a failover or a hedge). */
  asked: string[];
  /** True when the answer came from the hedged request. */
  hedged: boolean;
  ms: number;
  /** Why the shard has no answer (no serving replica, every replica failed, deadline). */
  error?: string;
  /** Not asked: ads are placed by advertiser and the filter's advertisers have none on this shard. */
  skipped?: boolean;
}

export interface ClusterSearchResult {
  results: SearchResults;
  /** True when at least one shard did not answer by the deadline: the results cover the others. */
  partial: boolean;
  missingShards: number[];
  shards: ShardOutcome[];
  /** Time from the call to the merged answer. */
  ms: number;
}

/** Counters since the router started (for metrics and tests). */
export interface RouterStats {
  searches: number;
  /** Searches answered without every shard. */
  partialAnswers: number;
  /** Shard answers missing from those (summed over searches). */
  missingShardAnswers: number;
  /** Second requests sent because the first replica had not answered after hedgeAfterMs. */
  hedgesSent: number;
  /** Shard answers that came from a hedged request. */
  hedgesWon: number;
  /** Requests re-sent to another replica after one refused or had no responders. */
  failovers: number;
}

export const routerDefaults = { deadlineMs: 200, hedgeAfterMs: 0, shardMapPollMs: 1000 };

const filterFields = ['ids', 'active', 'budget', 'advertisers', 'excludeAdvertisers', 'campaigns', 'categories', 'geos'];

function checkPosition(position: unknown): LogPosition {
  if (position === undefined) return {};
  if (position === null || typeof position !== 'object' || Array.isArray(position)) throw invalid('a LogPosition from CorpusLog (shard -> sequence)', 'options.readAfter', position);
  for (const [shard, seq] of Object.entries(position)) {
    integerIn(Number(shard), `options.readAfter key '${shard}'`, 0, 65535);
    integerIn(seq, `options.readAfter[${shard}]`, 0, Number.MAX_SAFE_INTEGER);
  }
  return position as LogPosition;
}

/**
 * Which shards can hold an ad the filter admits: all of them, but only the filter's advertisers'
 * shards when ads are placed by advertiser and the filter names advertisers.
 */
function shardsHolding(map: ShardMap, filter: EligibilityFilter | undefined): (shard: number) => boolean {
  const advertisers = filter?.advertisers;
  if (map.placement !== 'advertiser' || !advertisers || advertisers.length === 0) return () => true;
  const shards = new Set(Array.from(advertisers, (a) => shardOfAdvertiser(Number(a), map.shards)));
  return (shard) => shards.has(shard);
}

/** A replica that failed is tried last for this long. */
const failurePenaltyMs = 1000;

export class ClusterRouter {
  private map: ShardMap | undefined;
  private members: MembershipView | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Map<string, number>();
  private readonly failedAt = new Map<string, number>();
  private closed = false;
  private mapError: Error | undefined;
  private readonly listeners = new Set<(result: ClusterSearchResult) => void>();
  private readonly counters: RouterStats = { searches: 0, partialAnswers: 0, missingShardAnswers: 0, hedgesSent: 0, hedgesWon: 0, failovers: 0 };

  private constructor(private readonly nc: NatsConnection, private readonly options: Required<RouterOptions>) {}

  /** Starts a router; it need not find a shard map yet (requests are refused until it does). */
  static async start(nc: NatsConnection, options: RouterOptions): Promise<ClusterRouter> {
    const o = knownOptions(options, 'router options', ['cluster', 'deadlineMs', 'hedgeAfterMs', 'shardMapPollMs']);
    const router = new ClusterRouter(nc, {
      cluster: checkName(options.cluster, 'options.cluster'),
      deadlineMs: integerIn(o.deadlineMs ?? routerDefaults.deadlineMs, 'options.deadlineMs', 1, 600_000),
      hedgeAfterMs: integerIn(o.hedgeAfterMs ?? routerDefaults.hedgeAfterMs, 'options.hedgeAfterMs', 0, 600_000),
      shardMapPollMs: integerIn(o.shardMapPollMs ?? routerDefaults.shardMapPollMs, 'options.shardMapPollMs', 10, 600_000),
    });
    await router.lookForShardMap();
    return router;
  }

  /** The shard map, once known. */
  get shardMap(): ShardMap | undefined {
    return this.map;
  }

  /** Replicas of a shard the router currently sees (any health). */
  replicas(shard: number): MemberEntry[] {
    return this.members?.members(shard) ?? [];
  }

  /** Calls `listener` with every search's result (metrics); returns a function that removes it. */
  observe(listener: (result: ClusterSearchResult) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): RouterStats {
    return { ...this.counters };
  }

  private async lookForShardMap(): Promise<void> {
    try {
      const map = await readShardMap(this.nc, this.options.cluster);
      // The shard map never changes once created (no resharding yet): read once, then watch membership.
      this.members = await MembershipView.watch(this.nc, map.cluster, map.membershipTtlMs);
      this.map = map;
    } catch (error) {
      // No map yet, or JetStream failing over: look again later. Anything else (a map this
      // version cannot read) is kept and given to every search.
      if (!(error instanceof NoShardMapError) && !isTransient(error)) {
        this.mapError = error as Error;
        throw error;
      }
      if (!this.closed) {
        this.pollTimer = setTimeout(() => void this.lookForShardMap().catch(() => undefined), this.options.shardMapPollMs);
        this.pollTimer.unref();
      }
    }
  }

  /**
   * Top-k over every shard for each query (nq x dim). Rejects with NoShardMapError while no shard
   * map is known; otherwise resolves by the deadline, flagged partial when shards are missing.
   */
  async search(queries: Float32Array, k: number, options: ClusterSearchOptions = {}): Promise<ClusterSearchResult> {
    const map = this.map;
    if (!map) throw this.mapError ?? noShardMap(this.options.cluster);
    const o = knownOptions(options, 'search options', ['deadlineMs', 'hedgeAfterMs', 'readAfter', 'filter', 'scorer']);
    const scorer = o.scorer === undefined ? undefined : knownOptions(o.scorer, 'options.scorer', ['scenario', 'weights']) as BlendOptions;
    const dim = scorer ? this.checkScorerSearch(map, scorer) : map.dim;
    wholeRows(queries, dim, 'queries');
    if (queries.length === 0) throw new DimensionMismatchError(`Expected at least one query of dim ${dim}`);
    integerIn(k, 'k', 1, maxK);
    const deadlineMs = integerIn(o.deadlineMs ?? this.options.deadlineMs, 'options.deadlineMs', 1, 600_000);
    const hedgeAfterMs = integerIn(o.hedgeAfterMs ?? this.options.hedgeAfterMs, 'options.hedgeAfterMs', 0, 600_000);
    // Checked here, so that a bad request is refused at once rather than by every replica (which would read as missing shards).
    for (let i = 0; i < queries.length; i++) {
      if (!Number.isFinite(queries[i])) throw new NonFiniteError(`Expected finite queries but queries[${i}] is ${queries[i]}`);
    }
    if (options.filter !== undefined) knownOptions(options.filter, 'options.filter', filterFields);
    const readAfter = checkPosition(options.readAfter);
    // Learned scores are higher-is-better whatever the index's metric.
    const metric = scorer ? 'ip' : map.metric;
    const started = Date.now();
    const deadlineAt = started + deadlineMs;
    // One payload per distinct minimum sequence (usually one for every shard).
    const payloads = new Map<number, Uint8Array>();
    const payloadFor = (minApplied: number) => {
      let payload = payloads.get(minApplied);
      if (!payload) {
        payload = encodeSearchRequest({
          queries, dim, k, minApplied, waitMs: Math.max(0, deadlineMs - 5), ...(options.filter ? { filter: options.filter } : {}), ...(scorer ? { scorer } : {}),
        });
        payloads.set(minApplied, payload);
      }
      return payload;
    };
    const wanted = shardsHolding(map, options.filter);
    const outcomes = await Promise.all(Array.from({ length: map.shards }, (_, shard) => {
      if (!wanted(shard)) return { outcome: { shard, answered: false, skipped: true, asked: [], hedged: false, ms: 0 }, reply: undefined };
      const minApplied = readAfter[shard] ?? 0;
      return this.askShard(shard, payloadFor(minApplied), minApplied, deadlineAt, hedgeAfterMs, scorer !== undefined, metric);
    }));
    const answered = outcomes.filter((o) => o.reply).map((o) => o.reply!.results);
    const results = mergeShardResults(metric, k, queries.length / dim, answered);
    const missingShards = outcomes.filter((o) => !o.reply && !o.outcome.skipped).map((o) => o.outcome.shard);
    this.counters.searches++;
    if (missingShards.length > 0) this.counters.partialAnswers++;
    this.counters.missingShardAnswers += missingShards.length;
    this.counters.hedgesWon += outcomes.filter((o) => o.outcome.hedged).length;
    const result = { results, partial: missingShards.length > 0, missingShards, shards: outcomes.map((o) => o.outcome), ms: Date.now() - started };
    for (const listener of this.listeners) {
      try {
        listener(result);
      } catch {
        // An observer's failure (a metrics bug) must not fail the search.
      }
    }
    return result;
  }

  /**
   * Checks a scorer search against the scorer the replicas advertise (one userDim across the
   * cluster, a scenario or heads it knows), so that a bad request is refused here rather than by
   * every replica; returns the userDim.
   */
  private checkScorerSearch(map: ShardMap, blend: BlendOptions): number {
    const scorers = [];
    for (let shard = 0; shard < map.shards; shard++) for (const m of this.replicas(shard)) if (m.scorer) scorers.push(m.scorer);
    if (scorers.length === 0) throw new ClusterError('ERR_CLUSTER', `Expected replicas with a learned scorer for options.scorer but no replica of cluster '${map.cluster}' has one (cangen shard --scorer DIR)`);
    const dims = new Set(scorers.map((s) => s.userDim));
    if (dims.size > 1) throw new ClusterError('ERR_SHARD_MAP', `Expected one learned scorer across cluster '${map.cluster}' but its replicas' scorers take users of dims ${[...dims].join(', ')}`);
    const { heads, scenarios } = scorers[0]!;
    if (blend.scenario !== undefined && blend.weights !== undefined) throw new InvalidArgumentError('Expected either options.scorer.scenario or options.scorer.weights, not both');
    if (blend.scenario !== undefined && !scenarios.includes(blend.scenario)) {
      throw new UnknownScenarioError(`Unknown scenario ${JSON.stringify(blend.scenario)}: the replicas' scorer defines ${scenarios.map((s) => `'${s}'`).join(', ') || 'no scenarios'}`);
    }
    if (blend.weights !== undefined) {
      if (blend.weights === null || typeof blend.weights !== 'object' || Array.isArray(blend.weights)) throw invalid('an object { head: weight }', 'options.scorer.weights', blend.weights);
      for (const [head, w] of Object.entries(blend.weights)) {
        if (!heads.includes(head)) throw new UnknownHeadError(`Unknown head '${head}': the replicas' scorer has heads ${heads.map((h) => `'${h}'`).join(', ')}`);
        if (typeof w !== 'number' || !Number.isFinite(w)) throw invalid('a finite number', `options.scorer.weights.${head}`, w);
      }
    }
    return [...dims][0]!;
  }

  /** Serving replicas of a shard (with a learned scorer, for a scorer search), best first. */
  private ranked(shard: number, minApplied: number, withScorer: boolean): MemberEntry[] {
    const now = Date.now();
    const penalised = (m: MemberEntry) => (now - (this.failedAt.get(m.replicaId) ?? -Infinity) < failurePenaltyMs ? 1 : 0);
    return this.replicas(shard)
      .filter((m) => m.health === 'serving' && (!withScorer || m.scorer !== undefined))
      .sort((a, b) =>
        penalised(a) - penalised(b) ||
        Number(b.applied >= minApplied) - Number(a.applied >= minApplied) ||
        (this.inflight.get(a.replicaId) ?? 0) - (this.inflight.get(b.replicaId) ?? 0) ||
        b.applied - a.applied);
  }

  private askShard(shard: number, payload: Uint8Array, minApplied: number, deadlineAt: number, hedgeAfterMs: number, withScorer: boolean, metric: Metric):
    Promise<{ outcome: ShardOutcome; reply?: ShardSearchReply }> {
    const started = Date.now();
    const candidates = this.ranked(shard, minApplied, withScorer);
    const outcome: ShardOutcome = { shard, answered: false, asked: [], hedged: false, ms: 0 };
    return new Promise((resolve) => {
      let next = 0;
      let pending = 0;
      let done = false;
      let lastError = candidates.length === 0 ? `no serving replica${withScorer ? ' with a learned scorer' : ''}` : '';
      const timers: NodeJS.Timeout[] = [];
      const finish = (reply?: ShardSearchReply, replicaId?: string, hedged = false) => {
        if (done) return;
        done = true;
        timers.forEach(clearTimeout);
        outcome.ms = Date.now() - started;
        if (reply) Object.assign(outcome, { answered: true, replicaId, hedged });
        else outcome.error = Date.now() >= deadlineAt - 1 ? `no answer within the deadline${lastError ? ` (${lastError})` : ''}` : lastError;
        resolve({ outcome, reply });
      };
      const launch = (hedged: boolean): boolean => {
        const remaining = deadlineAt - Date.now();
        if (done || next >= candidates.length || remaining <= 0) return false;
        const member = candidates[next++]!;
        outcome.asked.push(member.replicaId);
        pending++;
        this.inflight.set(member.replicaId, (this.inflight.get(member.replicaId) ?? 0) + 1);
        this.nc.request(member.subject, payload, { timeout: remaining })
          .then((msg) => finish(decodeSearchReply(msg.data, metric), member.replicaId, hedged))
          .catch((error: Error) => {
            this.failedAt.set(member.replicaId, Date.now());
            lastError = `${member.replicaId}: ${error.message}`;
            pending--;
            if (launch(false)) this.counters.failovers++;
            else if (pending === 0) finish();
          })
          .finally(() => this.inflight.set(member.replicaId, (this.inflight.get(member.replicaId) ?? 1) - 1));
        return true;
      };
      if (!launch(false)) return finish();
      if (hedgeAfterMs > 0) timers.push(setTimeout(() => launch(true) && this.counters.hedgesSent++, hedgeAfterMs));
      timers.push(setTimeout(() => finish(), Math.max(0, deadlineAt - Date.now())));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.pollTimer);
    await this.members?.close();
  }
}
