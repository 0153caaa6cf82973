/**
 * Ads with embeddings in a VectorIndex of any kind. The index holds internal keys, not ad ids, so
 * that an ad can be re-embedded (a fresh key; the old one becomes a tombstone) and removed on
 * indexes that cannot delete yet: searches skip tombstones and fetch a little more to make up.
 * Queries that arrive in the same tick share one index call (the fused scan reads the corpus once
 * for all of them).
 */
import { DimensionMismatchError } from '../errors';
import type { VectorIndex } from '../vector-index';

export interface CorpusHit {
  adIds: bigint[];
  /** Higher is better for every metric ('l2' distances are negated). */
  scores: number[];
}

export interface EmbeddingCorpusOptions {
  /** Keep a copy of each vector in Node, for exact re-scoring (two-stage retrieval). */
  keepVectors?: boolean;
  /** Share one index call between the queries of one tick (default true). */
  batchQueries?: boolean;
}

interface Pending {
  query: Float32Array;
  k: number;
  resolve: (hit: CorpusHit) => void;
  reject: (error: unknown) => void;
}

export class EmbeddingCorpus {
  readonly index: VectorIndex;
  readonly dim: number;
  private readonly keepVectors: boolean;
  private readonly batchQueries: boolean;
  private adByKey = new BigInt64Array(1024).fill(-1n);
  private vectors: Float32Array;
  private readonly keyByAd = new Map<bigint, number>();
  private nextKey = 0;
  private writes: Promise<unknown> = Promise.resolve();
  private pending: Pending[] = [];

  constructor(index: VectorIndex, options: EmbeddingCorpusOptions = {}) {
    this.index = index;
    this.dim = index.dim;
    this.keepVectors = options.keepVectors ?? false;
    this.batchQueries = options.batchQueries ?? true;
    this.vectors = new Float32Array(this.keepVectors ? 1024 * this.dim : 0);
  }

  /** Ads currently searchable. */
  get size(): number {
    return this.keyByAd.size;
  }

  has(adId: bigint): boolean {
    return this.keyByAd.has(adId);
  }

  /**
   * Adds or replaces the embeddings of `adIds` (`vectors` is n x dim). All or nothing: when the
   * index rejects the batch (a non-finite value, say), the previous embeddings stay in place.
   */
  upsert(adIds: readonly bigint[], vectors: Float32Array): Promise<void> {
    if (vectors.length !== adIds.length * this.dim) {
      throw new DimensionMismatchError(
        `Expected ${adIds.length} x ${this.dim} = ${adIds.length * this.dim} values for vectors but received ${vectors.length}`,
      );
    }
    const run = async () => {
      const n = adIds.length;
      const keys = new BigInt64Array(n);
      const first = this.nextKey;
      for (let i = 0; i < n; i++) keys[i] = BigInt(first + i);
      this.nextKey += n;
      await this.index.add(keys, vectors);
      this.grow(this.nextKey);
      for (let i = 0; i < n; i++) {
        const adId = adIds[i]!;
        const old = this.keyByAd.get(adId);
        if (old !== undefined) this.adByKey[old] = -1n;
        this.adByKey[first + i] = adId;
        this.keyByAd.set(adId, first + i);
        if (this.keepVectors) this.vectors.set(vectors.subarray(i * this.dim, (i + 1) * this.dim), (first + i) * this.dim);
      }
    };
    const done = this.writes.then(run, run);
    this.writes = done.catch(() => undefined);
    return done;
  }

  /** Makes ads unsearchable; returns how many were present. */
  remove(adIds: readonly bigint[]): number {
    let removed = 0;
    for (const adId of adIds) {
      const key = this.keyByAd.get(adId);
      if (key === undefined) continue;
      this.adByKey[key] = -1n;
      this.keyByAd.delete(adId);
      removed++;
    }
    return removed;
  }

  /** The kept vector of an ad (a view), when keepVectors is on. */
  vectorOf(adId: bigint): Float32Array | undefined {
    const key = this.keyByAd.get(adId);
    if (key === undefined || !this.keepVectors) return undefined;
    return this.vectors.subarray(key * this.dim, (key + 1) * this.dim);
  }

  /** The k best live ads for one query (1 x dim). */
  search(query: Float32Array, k: number): Promise<CorpusHit> {
    if (query.length !== this.dim) {
      throw new DimensionMismatchError(`Expected ${this.dim} values for query but received ${query.length}`);
    }
    if (!this.batchQueries) return this.searchMany([{ query, k }]).then((hits) => hits[0]!);
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ query, k, resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.searchMany(batch).then(
      (hits) => batch.forEach((p, i) => p.resolve(hits[i]!)),
      (error) => batch.forEach((p) => p.reject(error)),
    );
  }

  private async searchMany(batch: { query: Float32Array; k: number }[]): Promise<CorpusHit[]> {
    const out = batch.map((): CorpusHit => ({ adIds: [], scores: [] }));
    const live = this.keyByAd.size;
    if (live === 0) return out;
    const total = this.index.size;
    const maxK = Math.max(...batch.map((b) => b.k));
    // Tombstones take result slots: fetch in proportion to how many there are.
    const fetch = Math.min(total, Math.ceil(maxK * (total / live)) + (total > live ? 8 : 0));
    const queries = new Float32Array(batch.length * this.dim);
    batch.forEach((b, i) => queries.set(b.query, i * this.dim));
    const results = await this.index.search(queries, Math.max(1, fetch));
    const sign = this.index.metric === 'l2' ? -1 : 1;
    for (let q = 0; q < batch.length; q++) {
      const { ids, scores } = results.row(q);
      const hit = out[q]!;
      const k = batch[q]!.k;
      for (let i = 0; i < ids.length && hit.adIds.length < k; i++) {
        const adId = this.adByKey[Number(ids[i]!)]!;
        if (adId < 0n) continue;
        hit.adIds.push(adId);
        hit.scores.push(sign * scores[i]!);
      }
    }
    return out;
  }

  private grow(keys: number): void {
    if (keys <= this.adByKey.length) return;
    let capacity = this.adByKey.length;
    while (capacity < keys) capacity *= 2;
    const ads = new BigInt64Array(capacity).fill(-1n);
    ads.set(this.adByKey);
    this.adByKey = ads;
    if (this.keepVectors) {
      const vectors = new Float32Array(capacity * this.dim);
      vectors.set(this.vectors);
      this.vectors = vectors;
    }
  }
}
