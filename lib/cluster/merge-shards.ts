/**
 * Merging shards' top-k lists into the corpus' top-k. Shards hold disjoint ads, so the best k of
 * the union of every shard's best k is the best k overall. Order: best score first (highest for
 * 'ip' and 'cosine', lowest for 'l2'), equal scores by ascending id; rows padded with id -1 and
 * score NaN, as every cangen search pads.
 */
import type { Metric } from '../metric';
import { SearchResults } from '../results';

export function mergeShardResults(metric: Metric, k: number, queries: number, shards: readonly SearchResults[]): SearchResults {
  const ids = new BigInt64Array(queries * k).fill(-1n);
  const scores = new Float32Array(queries * k).fill(Number.NaN);
  const counts = new Uint32Array(queries);
  const better = metric === 'l2' ? (a: number, b: number) => a - b : (a: number, b: number) => b - a;
  for (let q = 0; q < queries; q++) {
    const pool: { id: bigint; score: number }[] = [];
    for (const shard of shards) {
      const row = shard.row(q);
      for (let i = 0; i < row.ids.length; i++) pool.push({ id: row.ids[i]!, score: row.scores[i]! });
    }
    pool.sort((a, b) => better(a.score, b.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const n = Math.min(k, pool.length);
    for (let i = 0; i < n; i++) {
      ids[q * k + i] = pool[i]!.id;
      scores[q * k + i] = pool[i]!.score;
    }
    counts[q] = n;
  }
  return new SearchResults(k, metric, { ids, scores, counts });
}
