/**
 * The independent reference: float64 brute force written here, sharing no code with the index.
 */
import * as assert from 'uvu/assert';
import type { Metric, SearchResults } from '../../lib';

/** Score of one ad for one query in float64, in the metric's reported units. */
export function referenceScore(metric: Metric, query: Float32Array, x: Float32Array, xOffset: number): number {
  const dim = query.length;
  let dot = 0;
  let qq = 0;
  let xx = 0;
  let dist = 0;
  for (let j = 0; j < dim; j++) {
    const q = query[j]!;
    const v = x[xOffset + j]!;
    dot += q * v;
    qq += q * q;
    xx += v * v;
    dist += (q - v) * (q - v);
  }
  if (metric === 'l2') return dist;
  if (metric === 'cosine') return dot / Math.sqrt(qq * xx);
  return dot;
}

export interface Ranked {
  ids: bigint[];
  scores: number[];
}

/** Exact top-k of every query over (ids, vectors), best first. */
export function bruteForce(
  metric: Metric,
  ids: BigInt64Array,
  vectors: Float32Array,
  queries: Float32Array,
  dim: number,
  k: number,
): Ranked[] {
  const n = ids.length;
  const out: Ranked[] = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const scored = new Array<{ id: bigint; score: number }>(n);
    for (let i = 0; i < n; i++) scored[i] = { id: ids[i]!, score: referenceScore(metric, query, vectors, i * dim) };
    scored.sort((a, b) => (metric === 'l2' ? a.score - b.score : b.score - a.score));
    const top = scored.slice(0, k);
    out.push({ ids: top.map((s) => s.id), scores: top.map((s) => s.score) });
  }
  return out;
}

/**
 * Asserts that `results` is the exact top-k: rank by rank the scores equal the reference's
 * within `tolerance`, every returned id's own float64 score equals its returned score, ids
 * agree wherever the reference has no near-tie, and rows are padded exactly past the corpus.
 */
export function assertExact(
  results: SearchResults,
  reference: Ranked[],
  metric: Metric,
  vectorsById: Map<bigint, number>,
  vectors: Float32Array,
  queries: Float32Array,
  dim: number,
  tolerance = 1e-3,
): void {
  assert.is(results.queries, reference.length);
  for (let q = 0; q < reference.length; q++) {
    const expected = reference[q]!;
    const row = results.row(q);
    const query = queries.subarray(q * dim, (q + 1) * dim);
    assert.is(results.counts[q], expected.ids.length, `query ${q}: count`);
    for (let i = 0; i < expected.ids.length; i++) {
      const tol = tolerance * Math.max(1, Math.abs(expected.scores[i]!));
      const got = row.scores[i]!;
      assert.ok(Math.abs(got - expected.scores[i]!) <= tol, `query ${q} rank ${i}: score ${got} vs reference ${expected.scores[i]}`);
      const offset = vectorsById.get(row.ids[i]!);
      assert.ok(offset !== undefined, `query ${q} rank ${i}: unknown id ${row.ids[i]}`);
      const own = referenceScore(metric, query, vectors, offset!);
      assert.ok(Math.abs(own - got) <= tol, `query ${q} rank ${i}: id ${row.ids[i]} scores ${own}, returned ${got}`);
      const before = i > 0 ? Math.abs(expected.scores[i - 1]! - expected.scores[i]!) : Infinity;
      const after = i + 1 < expected.scores.length ? Math.abs(expected.scores[i + 1]! - expected.scores[i]!) : Infinity;
      if (before > 2 * tol && after > 2 * tol) assert.is(row.ids[i], expected.ids[i], `query ${q} rank ${i}: id`);
    }
    assert.is(new Set(row.ids).size, row.ids.length, `query ${q}: ids repeat`);
    for (let i = expected.ids.length; i < results.k; i++) {
      assert.is(results.ids[q * results.k + i], -1n, `query ${q} rank ${i}: padding id`);
      assert.ok(Number.isNaN(results.scores[q * results.k + i]), `query ${q} rank ${i}: padding score`);
    }
  }
}

export function offsetsOf(ids: BigInt64Array, dim: number): Map<bigint, number> {
  const map = new Map<bigint, number>();
  ids.forEach((id, i) => map.set(id, i * dim));
  return map;
}
