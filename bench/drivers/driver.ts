/**
 * The interface every engine in the exact-search benchmark implements, and the timing loop they
 * share. Data convention (as everywhere in cangen): row-major n x dim Float32Array, x[i*dim+j];
 * the id of row i is i, so every engine's ids can be compared with ours directly.
 */

export interface Dataset {
  /** n x dim, row-major, in its own buffer (byteOffset 0). */
  vectors: Float32Array;
  n: number;
  dim: number;
}

/** How long to measure one cell (one engine, one corpus, one batch size). */
export interface MeasurePlan {
  /** Timed repetitions wanted at least; fewer only when a single batch is slow (then marked). */
  minReps: number;
  /** Timed repetitions at most. */
  maxReps: number;
  /** Wall-clock budget for the timed repetitions of one cell, in milliseconds. */
  budgetMs: number;
  /** A warm-up slower than this is kept as the only sample (no further repetitions). */
  capMs: number;
}

export interface Measurement {
  /** Milliseconds per batch of each timed repetition. */
  timesMs: number[];
  /** Ids (row numbers) of the first batch, batch x k, row-major; -1 where an engine has no result. */
  firstIds: BigInt64Array;
  /** Set when the cell was cut short by the time budget. */
  capped?: string;
}

export interface Driver {
  /** Stable key, used by --engines and in the JSON. */
  readonly key: string;
  /** Name shown in the table. */
  readonly label: string;
  /** Caveat for the table notes (e.g. single-threaded by construction). */
  readonly note?: string;
  /** Threads this engine really uses. */
  readonly threads: number;
  /** Whether this row is cangen's own kernel (the reference for recall and the goals). */
  readonly ours?: boolean;
  /** cangen's flat kind: the precision its scan reads (its FLOP ceiling and bytes per value). */
  readonly precision?: 'fp32' | 'bf16' | 'int8';
  /** Resident bytes per ad of the built index (vectors, reduced copy, ids and attributes). */
  bytesPerAd?(): Promise<number>;
  /** undefined when the engine can run here, otherwise why not (shown as the row's note). */
  unavailable(): Promise<string | undefined>;
  /** Takes the corpus; may keep a reference to `data.vectors` but must not modify it. */
  build(data: Dataset): Promise<void>;
  /** Exact top-k of `nq` queries (nq x dim): nq x k ids, row-major, -1 padded. */
  search(queries: Float32Array, nq: number, k: number): Promise<BigInt64Array>;
  /**
   * Optional: time the batches itself (an engine in another process times inside that process,
   * so that transport is not measured). Must follow the same rules as `measure` below.
   */
  timeSearch?(batches: Float32Array[], batch: number, k: number, plan: MeasurePlan): Promise<Measurement>;
  /** Releases the corpus and the index. */
  free(): Promise<void>;
  /** Ends helper processes; called once at the end of the run. */
  close?(): Promise<void>;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * One warm-up on batches[0] (whose ids are returned for the recall check), then repetitions
 * cycling through `batches` until `maxReps` or the budget is spent. A warm-up over `capMs` is kept
 * as the only sample; a budget that allows fewer than `minReps` repetitions is marked.
 */
export async function measure(
  driver: Driver,
  batches: Float32Array[],
  batch: number,
  k: number,
  plan: MeasurePlan,
): Promise<Measurement> {
  if (driver.timeSearch) return driver.timeSearch(batches, batch, k, plan);
  let start = performance.now();
  const firstIds = await driver.search(batches[0]!, batch, k);
  const warmupMs = performance.now() - start;
  if (warmupMs > plan.capMs) {
    return { timesMs: [warmupMs], firstIds, capped: `capped: 1 run (${(warmupMs / 1000).toFixed(1)} s), no warm-up` };
  }
  const reps = Math.max(1, Math.min(plan.maxReps, Math.floor(plan.budgetMs / Math.max(warmupMs, 1e-3))));
  const timesMs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const queries = batches[r % batches.length]!;
    start = performance.now();
    await driver.search(queries, batch, k);
    timesMs.push(performance.now() - start);
  }
  return { timesMs, firstIds, capped: reps < plan.minReps ? `capped: ${reps} rep${reps === 1 ? '' : 's'}` : undefined };
}

/** Row numbers as BigInt64Array ids, from whatever integer array an engine returns. */
export function toIds(values: ArrayLike<number | bigint>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!);
  return out;
}
