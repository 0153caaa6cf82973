/**
 * The search side of one of the corpus's indexes: the generators ask it for the best ads for a
 * query under the request's eligibility. The index holds ids, vectors and each ad's eligibility
 * attributes (written by AdCorpus from the store), so a search takes the request's compiled
 * filter and returns only eligible ads. Compiled filters are cached per (geo, categories,
 * excluded advertisers) and stay valid across writes. Concurrent queries with the same filter
 * share index calls (lib/request-batcher.ts; a call carries k down to a quarter of its largest,
 * and a vector asked twice once): batches form only under load. Writes go through AdCorpus, never through here.
 */
import { maxK } from '../defaults';
import { DimensionMismatchError } from '../errors';
import { RequestBatcher, splitBySize, type BatchingOptions, type BatcherStats } from '../request-batcher';
import { integerIn } from '../validate';
import type { AdStore } from './ad-store';
import type { RequestEligibility } from './eligibility';
import type { IndexFilter, SearchIndex } from './search-index';

export interface CorpusHit {
  adIds: bigint[];
  /** Higher is better for every metric ('l2' distances are negated). */
  scores: number[];
  /** True when every ad is eligible for the request: the search ran with its native filter and its excluded ads were dropped. */
  eligible?: boolean;
  /** Shards of a sharded corpus that did not answer by the deadline (the hit covers the others); absent when all did. */
  missingShards?: readonly number[];
}

export interface EmbeddingCorpusOptions {
  /** Cross-request batching of searches (default: on, 64 a call, 5 ms at most); see BatchingOptions. */
  batching?: BatchingOptions;
  /** The older switch: false is `batching: { enabled: false }` (one index call per search). */
  batchQueries?: boolean;
  /** Compiled filters kept, least recently used dropped first (default 64). */
  filterCacheSize?: number;
}

interface Query {
  /** The caller's vector, copied as search() was called: the caller may reuse its array while the search is queued. */
  query: Float32Array;
  /** The caller's array itself: searches made with the same array (and values) share one row. */
  source: Float32Array;
  k: number;
  excludeAds?: ReadonlySet<bigint>;
  eligibility: RequestEligibility | undefined;
}

/** A compiled filter in the cache: its value once compiled, so a search can start without waiting a microtask. */
interface CachedFilter {
  promise: Promise<IndexFilter>;
  value?: IndexFilter;
}

export class EmbeddingCorpus {
  /** An AdIndex, or a RemoteIndex over a cluster's shards (lib/cluster). */
  readonly index: SearchIndex;
  readonly dim: number;
  readonly store: AdStore;
  private readonly filterCacheSize: number;
  private readonly batcher: RequestBatcher<Query, CorpusHit>;
  private readonly filters = new Map<string, CachedFilter>();

  constructor(index: SearchIndex, store: AdStore, options: EmbeddingCorpusOptions = {}) {
    this.index = index;
    this.dim = index.dim;
    this.store = store;
    this.filterCacheSize = options.filterCacheSize ?? 64;
    const batching = options.batchQueries === false ? { ...options.batching, enabled: false } : options.batching;
    this.batcher = new RequestBatcher((batch, _key, signal) => this.searchMany(batch, signal), batching, 'EmbeddingCorpus options.batching',
      (queries) => splitBySize(queries, fetchOf, (q, member) => q.source === member.source && sameValues(q.query, member.query)));
  }

  /** Compiled filters held (at most filterCacheSize). */
  get compiledFilters(): number {
    return this.filters.size;
  }

  /** Ads currently searchable. */
  get size(): number {
    return this.index.size;
  }

  /** Index calls made and the searches they answered (searches / calls is the mean batch). */
  get batching(): Readonly<BatcherStats> {
    return this.batcher.stats;
  }

  /**
   * The k best live ads for one query (1 x dim). With an AdIndex and the request's eligibility,
   * only eligible ads are returned (`hit.eligible` says when that is guaranteed). A search whose
   * `signal` aborts rejects with AbortedError; the index call it shares stops once every search
   * in it has aborted.
   */
  search(query: Float32Array, k: number, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<CorpusHit> {
    if (query.length !== this.dim) {
      throw new DimensionMismatchError(`Expected ${this.dim} values for query but received ${query.length}`);
    }
    integerIn(k, 'k', 1, maxK);
    const e = eligibility;
    return this.batcher.submit(e ? e.key : '', { query: query.slice(), source: query, k, excludeAds: e?.excludeAds, eligibility: e }, signal);
  }

  /** One index call for queries of one filter: at once when the filter is compiled already. */
  private searchMany(batch: readonly Query[], signal: AbortSignal | undefined): Promise<CorpusHit[]> {
    const eligibility = batch[0]!.eligibility;
    if (this.index.size === 0) return Promise.resolve(batch.map((): CorpusHit => ({ adIds: [], scores: [] })));
    if (!eligibility) return this.searchWith(batch, undefined, signal);
    const cached = this.cachedFilter(eligibility);
    return cached.value ? this.searchWith(batch, cached.value, signal) : cached.promise.then((filter) => this.searchWith(batch, filter, signal));
  }

  private async searchWith(batch: readonly Query[], filter: IndexFilter | undefined, signal: AbortSignal | undefined): Promise<CorpusHit[]> {
    const live = this.index.size;
    const out = batch.map((): CorpusHit => ({ adIds: [], scores: [] }));
    if (live === 0) return out;
    // Generators of one request often search with the same vector (two-tower and the dot-product scorer): one row each.
    const unique: Float32Array[] = [];
    const rowOf = new Map<Float32Array, number>();
    const rows = batch.map((b) => {
      const row = rowOf.get(b.source);
      if (row !== undefined && sameValues(unique[row]!, b.query)) return row;
      rowOf.set(b.source, unique.length);
      unique.push(b.query);
      return unique.length - 1;
    });
    let fetch = 1;
    for (const b of batch) fetch = Math.max(fetch, fetchOf(b));
    fetch = Math.min(fetch, live);
    const queries = unique.length === 1 ? unique[0]! : new Float32Array(unique.length * this.dim);
    if (unique.length > 1) unique.forEach((query, row) => queries.set(query, row * this.dim));
    const results = await this.index.search(queries, fetch, filter || signal ? { filter, signal } : undefined);
    const sign = this.index.metric === 'l2' ? -1 : 1;
    const ids = results.ids;
    const scores = results.scores;
    for (let q = 0; q < batch.length; q++) {
      const row = rows[q]!;
      const start = row * results.k;
      const end = start + results.counts[row]!;
      const hit = out[q]!;
      const { k, excludeAds } = batch[q]!;
      for (let i = start; i < end && hit.adIds.length < k; i++) {
        const adId = ids[i]!;
        if (excludeAds?.has(adId)) continue;
        hit.adIds.push(adId);
        hit.scores.push(sign * scores[i]!);
      }
      hit.eligible = filter !== undefined;
      if (results.missingShards && results.missingShards.length > 0) hit.missingShards = results.missingShards;
    }
    return out;
  }

  /**
   * The request's eligibility compiled by this corpus's index (cached, like every search's): a
   * filter to hand to components that search the same index, e.g. TwoStageRetriever's `eligible`.
   * Ads in `excludeAds` are not in it: they are dropped after a search.
   */
  filterFor(e: RequestEligibility): Promise<IndexFilter> {
    return this.cachedFilter(e).promise;
  }

  private cachedFilter(e: RequestEligibility): CachedFilter {
    const store = this.store;
    const key = `${store.namesVersion}\u0002${e.key}`;
    let cached = this.filters.get(key);
    if (cached) {
      // Most recently used last.
      this.filters.delete(key);
      this.filters.set(key, cached);
      return cached;
    }
    const entry: CachedFilter = { promise: this.index.filter(store.nativeFilter(e.geo, e)) };
    entry.promise.then((value) => (entry.value = value), () => this.filters.get(key) === entry && this.filters.delete(key));
    this.filters.set(key, entry);
    if (this.filters.size > this.filterCacheSize) this.filters.delete(this.filters.keys().next().value!);
    return entry;
  }
}

/** Results a query needs from the index: its k and its excluded ads, dropped afterwards. */
function fetchOf(q: Query): number {
  return q.k + (q.excludeAds?.size ?? 0);
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
