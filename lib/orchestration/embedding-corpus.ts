/**
 * Ads with embeddings in an index, searched by the generators. Two kinds of index:
 *
 * - an `AdIndex` (what the engine builds): keyed by the ads' own ids, with each ad's eligibility
 *   attributes (from the AdStore) written beside its vector, so a search takes the request's
 *   compiled filter and returns only eligible ads. Compiled filters are cached per (geo,
 *   categories, excluded advertisers); AdIndex recompiles them after writes. When an ad's
 *   attributes change without a new embedding (budget spent, paused, campaign exhausted), only
 *   its attributes are rewritten (`AdIndex.setAttributes`); no copy of the vectors is kept here
 *   unless `keepVectors` asks for one. Attributes travel packed (6 x Uint32 per ad), never as
 *   objects.
 * - any `VectorIndex` (flat, IVF, HNSW, FAISS): the index holds internal keys, not ad ids, so an
 *   ad can be re-embedded (a fresh key; the old one becomes a tombstone) and removed on indexes
 *   that cannot delete: searches skip tombstones and fetch a little more to make up. Eligibility
 *   is left to the pipeline.
 *
 * Queries that arrive in the same tick (with the same filter) share one index call.
 */
import { AdIndex, type CompiledFilter as NativeCompiledFilter } from '../ad-index';
import { DimensionMismatchError } from '../errors';
import type { VectorIndex } from '../vector-index';
import { nativeFields, type AdStore } from './ad-store';
import { grown, IdMap } from './id-map';
import type { RequestEligibility } from './types';

export interface CorpusHit {
  adIds: bigint[];
  /** Higher is better for every metric ('l2' distances are negated). */
  scores: number[];
  /**
   * True when every ad is eligible for the request: the search ran with its native filter, no
   * write was in flight, and its excluded ads were dropped.
   */
  eligible?: boolean;
}

export interface EmbeddingCorpusOptions {
  /** Keep a copy of each vector in Node (outside the JS heap), for exact re-scoring by vectorOf() (default false). */
  keepVectors?: boolean;
  /** Share one index call between the queries of one tick (default true). */
  batchQueries?: boolean;
  /** AdIndex only: the store whose attributes are written with each ad and whose changes are followed. */
  store?: AdStore;
  /** AdIndex only: compiled filters kept, least recently used dropped first (default 64). */
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

const inactive = Uint32Array.of(0, 2, 0, 0, 0, 0);

export class EmbeddingCorpus {
  readonly index: VectorIndex | AdIndex;
  readonly dim: number;
  readonly store: AdStore | undefined;
  private readonly native: AdIndex | undefined;
  private readonly keepVectors: boolean;
  private readonly batchQueries: boolean;
  private readonly filterCacheSize: number;
  // Rows: one per ad id ever seen (AdIndex) or per key (VectorIndex), never reused for another id.
  private readonly rowOf = new IdMap(1024);
  private rowIds = new BigInt64Array(0);
  private rowLive = new Uint8Array(0);
  private written = new Uint32Array(0);
  private vectors = new Float32Array(0);
  private rows = 0;
  private live = 0;
  private writes: Promise<unknown> = Promise.resolve();
  /** Writes queued or running, and a counter bumped when one is queued and when one ends. */
  private pendingWrites = 0;
  private writeEpoch = 0;
  private dirty: bigint[] = [];
  private dirtyRow = new Uint8Array(0);
  /** Ads removed here whose removal the index has not applied yet: searches fetch that many more. */
  private unapplied = 0;
  private pending = new Map<string, Pending[]>();
  private pendingCount = 0;
  private readonly filters = new Map<string, Promise<NativeCompiledFilter>>();

  constructor(index: VectorIndex | AdIndex, options: EmbeddingCorpusOptions = {}) {
    this.index = index;
    this.dim = index.dim;
    this.native = index instanceof AdIndex ? index : undefined;
    this.keepVectors = options.keepVectors ?? false;
    this.batchQueries = options.batchQueries ?? true;
    this.filterCacheSize = options.filterCacheSize ?? 64;
    this.store = this.native ? options.store : undefined;
    this.store?.onChange((ids) => this.attributesChanged(ids));
  }

  /** Compiled filters held (at most filterCacheSize). */
  get compiledFilters(): number {
    return this.filters.size;
  }

  /** Ads currently searchable. */
  get size(): number {
    return this.live;
  }

  has(adId: bigint): boolean {
    if (this.native) {
      const row = this.rowOf.get(adId);
      return row >= 0 && this.rowLive[row] === 1;
    }
    return this.rowOf.get(adId) >= 0;
  }

  /**
   * Adds or replaces the embeddings of `adIds` (`vectors` is n x dim). All or nothing: when the
   * index rejects the batch (a non-finite value, say), the previous embeddings stay in place.
   * An AdIndex also receives the ads' attributes: `attributes` (6 per ad, see
   * AdStore.nativeAttributes), else the store's current ones.
   */
  upsert(adIds: readonly bigint[], vectors: Float32Array, attributes?: Uint32Array): Promise<void> {
    if (vectors.length !== adIds.length * this.dim) {
      throw new DimensionMismatchError(
        `Expected ${adIds.length} x ${this.dim} = ${adIds.length * this.dim} values for vectors but received ${vectors.length}`,
      );
    }
    return this.native ? this.enqueue(() => this.upsertNative(adIds, vectors, attributes)) : this.enqueue(() => this.upsertKeys(adIds, vectors));
  }

  /** Makes ads unsearchable at once (the index forgets them in the background); returns how many were present. */
  remove(adIds: readonly bigint[]): number {
    let removed = 0;
    const gone: bigint[] = [];
    for (const adId of adIds) {
      const row = this.rowOf.get(adId);
      if (row < 0) continue;
      if (this.native) {
        if (this.rowLive[row] !== 1) continue;
        this.rowLive[row] = 0;
        gone.push(adId);
      } else {
        this.rowIds[row] = -1n;
        this.rowOf.set(adId, -1);
      }
      this.live--;
      removed++;
    }
    if (gone.length > 0) {
      const native = this.native!;
      this.unapplied += gone.length;
      void this.enqueue(() => native.remove(BigInt64Array.from(gone)))
        .catch(() => undefined)
        .finally(() => (this.unapplied -= gone.length));
    }
    return removed;
  }

  /** The kept vector of an ad (a view), when vectors are kept. */
  vectorOf(adId: bigint): Float32Array | undefined {
    if (!this.keepVectors) return undefined;
    const row = this.rowOf.get(adId);
    if (row < 0 || (this.native && this.rowLive[row] !== 1)) return undefined;
    return this.vectors.subarray(row * this.dim, (row + 1) * this.dim);
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
    const e = this.native && this.store ? eligibility : undefined;
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

  private searchMany(batch: readonly Query[], eligibility: RequestEligibility | undefined): Promise<CorpusHit[]> {
    return this.native ? this.searchNative(batch, eligibility) : this.searchKeys(batch);
  }

  private async searchNative(batch: readonly Query[], eligibility: RequestEligibility | undefined): Promise<CorpusHit[]> {
    const out = batch.map((): CorpusHit => ({ adIds: [], scores: [] }));
    if (this.live === 0) return out;
    const epoch = this.writeEpoch;
    const quiet = this.pendingWrites === 0;
    const filter = eligibility ? await this.filterFor(eligibility) : undefined;
    let fetch = 1;
    for (const b of batch) fetch = Math.max(fetch, b.k + (b.excludeAds?.size ?? 0));
    fetch = Math.min(fetch + this.unapplied, Math.max(1, this.live + this.unapplied));
    const queries = batch.length === 1 ? batch[0]!.query : new Float32Array(batch.length * this.dim);
    if (batch.length > 1) batch.forEach((b, i) => queries.set(b.query, i * this.dim));
    const signal = allAborted(batch.map((b) => b.signal));
    const results = await this.native!.search(queries, fetch, filter || signal ? { filter, signal } : undefined);
    // Nothing written since the search began: what the index returned is the current state.
    const current = quiet && this.pendingWrites === 0 && this.writeEpoch === epoch;
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
        if (!current && !this.has(adId)) continue;
        if (excludeAds?.has(adId)) continue;
        hit.adIds.push(adId);
        hit.scores.push(sign * scores[i]!);
      }
      hit.eligible = current && filter !== undefined;
    }
    return out;
  }

  private async searchKeys(batch: readonly { query: Float32Array; k: number }[]): Promise<CorpusHit[]> {
    const out = batch.map((): CorpusHit => ({ adIds: [], scores: [] }));
    const live = this.live;
    if (live === 0) return out;
    const index = this.index as VectorIndex;
    const total = index.size;
    let maxK = 1;
    for (const b of batch) maxK = Math.max(maxK, b.k);
    // Tombstones take result slots: fetch in proportion to how many there are.
    const fetch = Math.min(total, Math.ceil(maxK * (total / live)) + (total > live ? 8 : 0));
    const queries = new Float32Array(batch.length * this.dim);
    batch.forEach((b, i) => queries.set(b.query, i * this.dim));
    const results = await index.search(queries, Math.max(1, fetch));
    const sign = index.metric === 'l2' ? -1 : 1;
    for (let q = 0; q < batch.length; q++) {
      const { ids, scores } = results.row(q);
      const hit = out[q]!;
      const k = batch[q]!.k;
      for (let i = 0; i < ids.length && hit.adIds.length < k; i++) {
        const adId = this.rowIds[Number(ids[i]!)]!;
        if (adId < 0n) continue;
        hit.adIds.push(adId);
        hit.scores.push(sign * scores[i]!);
      }
    }
    return out;
  }

  private filterFor(e: RequestEligibility): Promise<NativeCompiledFilter> {
    const store = this.store!;
    const key = `${store.namesVersion}\u0002${e.key}`;
    let compiled = this.filters.get(key);
    if (compiled) {
      // Most recently used last.
      this.filters.delete(key);
      this.filters.set(key, compiled);
      return compiled;
    }
    compiled = this.native!.filter(store.nativeFilter(e.geo, e));
    compiled.catch(() => this.filters.delete(key));
    this.filters.set(key, compiled);
    if (this.filters.size > this.filterCacheSize) this.filters.delete(this.filters.keys().next().value!);
    return compiled;
  }

  /** Runs writes one after another; searches that overlap one check what they return. */
  private enqueue<T>(write: () => Promise<T>): Promise<T> {
    this.pendingWrites++;
    this.writeEpoch++;
    const run = async () => {
      try {
        return await write();
      } finally {
        this.pendingWrites--;
        this.writeEpoch++;
      }
    };
    const done = this.writes.then(run, run);
    this.writes = done.catch(() => undefined);
    return done;
  }

  private async upsertNative(adIds: readonly bigint[], vectors: Float32Array, attributes: Uint32Array | undefined): Promise<void> {
    let ids = adIds;
    let vs = vectors;
    let attrs = attributes ?? (this.store ? this.store.nativeAttributes(adIds) : undefined);
    // AdIndex rejects an id repeated in a batch; here the last occurrence wins, as it always did.
    if (new Set(adIds).size !== adIds.length) {
      const last = new Map<bigint, number>();
      adIds.forEach((id, i) => last.set(id, i));
      const picks = [...last.values()].sort((a, b) => a - b);
      ids = picks.map((i) => adIds[i]!);
      vs = new Float32Array(picks.length * this.dim);
      const picked = attrs ? new Uint32Array(picks.length * nativeFields) : undefined;
      picks.forEach((from, i) => {
        vs.set(vectors.subarray(from * this.dim, (from + 1) * this.dim), i * this.dim);
        picked?.set(attrs!.subarray(from * nativeFields, (from + 1) * nativeFields), i * nativeFields);
      });
      attrs = picked;
    }
    const n = ids.length;
    if (n === 0) return;
    await this.native!.upsert(BigInt64Array.from(ids), vs, attrs);
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      let row = this.rowOf.get(id);
      if (row < 0) {
        row = this.rows++;
        this.ensure(this.rows);
        this.rowOf.set(id, row);
        this.rowIds[row] = id;
      }
      if (this.rowLive[row] !== 1) {
        this.rowLive[row] = 1;
        this.live++;
      }
      if (this.keepVectors) this.vectors.set(vs.subarray(i * this.dim, (i + 1) * this.dim), row * this.dim);
      if (attrs) this.written.set(attrs.subarray(i * nativeFields, (i + 1) * nativeFields), row * nativeFields);
      else this.written.set(defaults, row * nativeFields);
    }
  }

  private async upsertKeys(adIds: readonly bigint[], vectors: Float32Array): Promise<void> {
    const n = adIds.length;
    const keys = new BigInt64Array(n);
    const first = this.rows;
    for (let i = 0; i < n; i++) keys[i] = BigInt(first + i);
    this.rows += n;
    await (this.index as VectorIndex).add(keys, vectors);
    this.ensure(this.rows);
    for (let i = 0; i < n; i++) {
      const adId = adIds[i]!;
      const old = this.rowOf.get(adId);
      if (old >= 0) this.rowIds[old] = -1n;
      else this.live++;
      this.rowIds[first + i] = adId;
      this.rowOf.set(adId, first + i);
      if (this.keepVectors) this.vectors.set(vectors.subarray(i * this.dim, (i + 1) * this.dim), (first + i) * this.dim);
    }
  }

  /** The store changed these ads: rewrite the attributes of those whose native attributes differ from what was written. */
  private attributesChanged(ids: readonly bigint[]): void {
    const wasEmpty = this.dirty.length === 0;
    for (const id of ids) {
      const row = this.rowOf.get(id);
      if (row < 0 || this.rowLive[row] !== 1 || this.dirtyRow[row] === 1) continue;
      this.dirtyRow[row] = 1;
      this.dirty.push(id);
    }
    if (wasEmpty && this.dirty.length > 0) void this.enqueue(() => this.rewrite()).catch(() => undefined);
  }

  private async rewrite(): Promise<void> {
    const ids = this.dirty;
    this.dirty = [];
    const store = this.store!;
    const changed: bigint[] = [];
    const rows: number[] = [];
    let tuples = new Uint32Array(0);
    const tuple = new Uint32Array(nativeFields);
    for (const id of ids) {
      const row = this.rowOf.get(id);
      this.dirtyRow[row] = 0;
      if (this.rowLive[row] !== 1) continue;
      if (store.has(id)) store.nativeAttributes([id], tuple);
      else tuple.set(inactive);
      const o = row * nativeFields;
      const w = this.written;
      if (tuple[0] === w[o] && tuple[1] === w[o + 1] && tuple[2] === w[o + 2] && tuple[3] === w[o + 3] && tuple[4] === w[o + 4] && tuple[5] === w[o + 5]) continue;
      tuples = grown(tuples, (changed.length + 1) * nativeFields);
      tuples.set(tuple, changed.length * nativeFields);
      changed.push(id);
      rows.push(row);
    }
    if (changed.length === 0) return;
    const n = changed.length;
    const attrs = tuples.subarray(0, n * nativeFields);
    // Attributes only: the embeddings in the index stay as they are.
    await this.native!.setAttributes(BigInt64Array.from(changed), attrs);
    rows.forEach((row, i) => this.written.set(attrs.subarray(i * nativeFields, (i + 1) * nativeFields), row * nativeFields));
  }

  private ensure(rows: number): void {
    this.rowIds = grown(this.rowIds, rows, -1n);
    this.rowLive = grown(this.rowLive, rows);
    this.dirtyRow = grown(this.dirtyRow, rows);
    if (this.native) this.written = grown(this.written, rows * nativeFields);
    if (this.keepVectors) this.vectors = grown(this.vectors, rows * this.dim);
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
const defaults = Uint32Array.of(1, 0, 0, 0, 0, 0);
