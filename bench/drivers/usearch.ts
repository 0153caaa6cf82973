/**
 * usearch exactSearch: no index, the corpus is passed on every call. It ignores a typed array's
 * byteOffset, so the harness hands it slice()d batches and a corpus in its own buffer.
 */
import { exactSearch, MetricKind } from 'usearch';
import type { Dataset, Driver } from './driver';

export function usearchExact(threads: number): Driver {
  let data: Dataset | undefined;
  return {
    key: 'usearch',
    label: 'usearch exactSearch',
    note: 'usearch 2.25.3; builds an n x batch distance table, so it slows per query as batches grow',
    threads,
    async unavailable() {
      return undefined;
    },
    async build(d: Dataset) {
      if (d.vectors.byteOffset !== 0) throw new Error('usearch exactSearch needs a corpus at byteOffset 0');
      data = d;
    },
    async search(queries, nq, k) {
      if (queries.byteOffset !== 0) throw new Error('usearch exactSearch needs slice()d queries');
      const result = exactSearch(data!.vectors, queries, data!.dim, k, MetricKind.IP, threads);
      const out = new BigInt64Array(nq * k).fill(-1n);
      if (nq === 1) {
        // A single query returns Matches (keys only for the results found).
        const keys = result.keys;
        for (let j = 0; j < keys.length && j < k; j++) out[j] = BigInt.asIntN(64, keys[j]!);
        return out;
      }
      const batch = result as { keys: BigUint64Array; counts: BigUint64Array };
      for (let i = 0; i < nq; i++) {
        const count = Number(batch.counts[i]!);
        for (let j = 0; j < count; j++) out[i * k + j] = BigInt.asIntN(64, batch.keys[i * k + j]!);
      }
      return out;
    },
    async free() {
      data = undefined;
    },
  };
}
