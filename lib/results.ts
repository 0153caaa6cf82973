/**
 * Search results over flat typed arrays: nq rows of k, best first, padded with id -1. A native
 * search's ids, scores and counts are views of one ArrayBuffer (one allocation per call):
 * transferring one array's buffer to a worker detaches all three, so copy (slice()) what you send.
 */
import type { Metric } from './metric';

export interface ResultRow {
  /** Ids of the real results of this query, best first. */
  ids: BigInt64Array;
  /** Their scores: similarity for 'ip' and 'cosine' (descending), squared distance for 'l2' (ascending). */
  scores: Float32Array;
}

export class SearchResults {
  /** Number of queries. */
  readonly queries: number;
  /** Results per query (rows are padded to k with id -1 and score NaN). */
  readonly k: number;
  readonly metric: Metric;
  /** queries x k ids, row-major. */
  readonly ids: BigInt64Array;
  /** queries x k scores, row-major. */
  readonly scores: Float32Array;
  /** How many of each row's k are real results (fewer than k when the index is smaller). */
  readonly counts: Uint32Array;
  /**
   * Set when a search asked for the GPU ran on the CPU instead, and says why (the model is too
   * wide for the device's shared memory, or too little device memory is free); otherwise undefined.
   */
  readonly gpuFallback?: string;
  /**
   * Set by a search over a sharded corpus (lib/cluster's RemoteIndex) when shards did not answer
   * by the deadline: the results cover the other shards. Undefined for a local index.
   */
  readonly missingShards?: readonly number[];

  constructor(
    k: number,
    metric: Metric,
    raw: { ids: BigInt64Array; scores: Float32Array; counts: Uint32Array; gpuFallback?: string; missingShards?: readonly number[] },
  ) {
    this.k = k;
    this.metric = metric;
    this.ids = raw.ids;
    this.scores = raw.scores;
    this.counts = raw.counts;
    this.queries = raw.counts.length;
    if (raw.gpuFallback !== undefined) this.gpuFallback = raw.gpuFallback;
    if (raw.missingShards !== undefined) this.missingShards = raw.missingShards;
  }

  /** The real results of query `i` (views, no copy). */
  row(i: number): ResultRow {
    if (!Number.isInteger(i) || i < 0 || i >= this.queries) {
      throw new RangeError(`Expected a query index between 0 and ${this.queries - 1} but received ${i}`);
    }
    const start = i * this.k;
    const end = start + this.counts[i]!;
    return { ids: this.ids.subarray(start, end), scores: this.scores.subarray(start, end) };
  }

  *[Symbol.iterator](): IterableIterator<ResultRow> {
    for (let i = 0; i < this.queries; i++) yield this.row(i);
  }
}
