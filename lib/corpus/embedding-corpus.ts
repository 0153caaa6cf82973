/**
 * The search side of one of the corpus's indexes: the generators ask it for the best ads for a
 * query under the request's eligibility. The index holds ids, vectors and each ad's eligibility
 * attributes (written by AdCorpus from the store), so a search takes the request's compiled
 * filter and returns only eligible ads. Compiled filters are cached per (geo, categories,
 * excluded advertisers) and stay valid across writes. Queries that arrive in the same tick with
 * the same filter share one index call. Writes go through AdCorpus, never through here.
 */
import type { AdIndex, CompiledFilter as NativeCompiledFilter } from '../ad-index';
import { DimensionMismatchError } from '../errors';
import type { AdStore } from './ad-store';
import type { RequestEligibility } from './eligibility';

export interface CorpusHit {
  adIds: bigint[];
  /** Higher is better for every metric ('l2' distances are negated). */
  scores: number[];
  /** True when every ad is eligible for the request: the search ran with its native filter and its excluded ads were dropped. */
  eligible?: boolean;
}

export interface EmbeddingCorpusOptions {
  /** Share one index call between the queries of one tick (default true). */
  batchQueries?: boolean;
  /** Compiled filters kept, least recently used dropped first (default 64). */
  filterCacheSize?: number;
}

interface Query {
  query: Float32Array;
  k: number;
  excludeAds?: ReadonlySet<bigint>;
  /** The asker gave up: a native search whose every asker gave up stops. */
  signal?: AbortSignal;
}

interface Pending extends Query {
  resolve: (hit: CorpusHit) => void;
  reject: (error: unknown) => void;
}

export class EmbeddingCorpus {
  readonly index: AdIndex;
  readonly dim: number;
  readonly store: AdStore;
  private readonly batchQueries: boolean;
  private readonly filterCacheSize: number;
  private pending = new Map<string, Pending[]>();
  private pendingCount = 0;
  private readonly filters = new Map<string, Promise<NativeCompiledFilter>>();

  constructor(index: AdIndex, store: AdStore, options: EmbeddingCorpusOptions = {}) {
    this.index = index;
    this.dim = index.dim;
    this.store = store;
    this.batchQueries = options.batchQueries ?? true;
    this.filterCacheSize = options.filterCacheSize ?? 64;
  }

  /** Compiled filters held (at most filterCacheSize). */
  get compiledFilters(): number {
    return this.filters.size;
  }

  /** Ads currently searchable. */
  get size(): number {
    return this.index.size;
  }

  /**
   * The k best live ads for one query (1 x dim). With an AdIndex and the request's eligibility,
   * only eligible ads are returned (`hit.eligible` says when that is guaranteed). An AdIndex
   * search stops (AbortedError) once `signal` and the signals of every query sharing it abort.
   */
  search(query: Float32Array, k: number, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<CorpusHit> {
    if (query.length !== this.dim) {
      throw new DimensionMismatchError(`Expected ${this.dim} values for query but received ${query.length}`);
    }
    const e = eligibility;
    if (!this.batchQueries) return this.searchMany([{ query, k, excludeAds: e?.excludeAds, signal }], e).then((hits) => hits[0]!);
    const key = e ? e.key : '';
    return new Promise((resolve, reject) => {
      if (this.pendingCount++ === 0) setImmediate(() => this.flush());
      let group = this.pending.get(key);
      if (!group) {
        group = [];
        this.pending.set(key, group);
        if (e) groupEligibility.set(group, e);
      }
      group.push({ query, k, excludeAds: e?.excludeAds, signal, resolve, reject });
    });
  }

  private flush(): void {
    const groups = this.pending;
    this.pending = new Map();
    this.pendingCount = 0;
    for (const batch of groups.values()) {
      this.searchMany(batch, groupEligibility.get(batch)).then(
        (hits) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(hits[i]!);
        },
        (error) => batch.forEach((p) => p.reject(error)),
      );
    }
  }

  private async searchMany(batch: readonly Query[], eligibility: RequestEligibility | undefined): Promise<CorpusHit[]> {
    const out = batch.map((): CorpusHit => ({ adIds: [], scores: [] }));
    const live = this.index.size;
    if (live === 0) return out;
    const filter = eligibility ? await this.filterFor(eligibility) : undefined;
    let fetch = 1;
    for (const b of batch) fetch = Math.max(fetch, b.k + (b.excludeAds?.size ?? 0));
    fetch = Math.min(fetch, live);
    const queries = batch.length === 1 ? batch[0]!.query : new Float32Array(batch.length * this.dim);
    if (batch.length > 1) batch.forEach((b, i) => queries.set(b.query, i * this.dim));
    const signal = allAborted(batch.map((b) => b.signal));
    const results = await this.index.search(queries, fetch, filter || signal ? { filter, signal } : undefined);
    const sign = this.index.metric === 'l2' ? -1 : 1;
    for (let q = 0; q < batch.length; q++) {
      const start = q * results.k;
      const end = start + results.counts[q]!;
      const hit = out[q]!;
      const { k, excludeAds } = batch[q]!;
      const ids = results.ids;
      const scores = results.scores;
      for (let i = start; i < end && hit.adIds.length < k; i++) {
        const adId = ids[i]!;
        if (excludeAds?.has(adId)) continue;
        hit.adIds.push(adId);
        hit.scores.push(sign * scores[i]!);
      }
      hit.eligible = filter !== undefined;
    }
    return out;
  }

  /**
   * The request's eligibility compiled by this corpus's index (cached, like every search's): a
   * filter to hand to components that search the same index, e.g. TwoStageRetriever's `eligible`.
   * Ads in `excludeAds` are not in it: they are dropped after a search.
   */
  filterFor(e: RequestEligibility): Promise<NativeCompiledFilter> {
    const store = this.store;
    const key = `${store.namesVersion}\u0002${e.key}`;
    let compiled = this.filters.get(key);
    if (compiled) {
      // Most recently used last.
      this.filters.delete(key);
      this.filters.set(key, compiled);
      return compiled;
    }
    compiled = this.index.filter(store.nativeFilter(e.geo, e));
    compiled.catch(() => this.filters.delete(key));
    this.filters.set(key, compiled);
    if (this.filters.size > this.filterCacheSize) this.filters.delete(this.filters.keys().next().value!);
    return compiled;
  }
}

const groupEligibility = new WeakMap<readonly Pending[], RequestEligibility>();

/** A signal that aborts once every one of `signals` has (undefined when one of them is absent: that asker never gives up). */
function allAborted(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  if (signals.length === 0 || signals.some((s) => s === undefined)) return undefined;
  if (signals.length === 1) return signals[0];
  const all = new AbortController();
  let left = signals.length;
  for (const s of signals as AbortSignal[]) {
    if (s.aborted) left--;
    else s.addEventListener('abort', () => --left === 0 && all.abort(s.reason), { once: true });
  }
  if (left === 0) all.abort();
  return all.signal;
}
