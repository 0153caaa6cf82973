/**
 * hnswlib-node BruteforceSearch: one query per call, on one thread, in a build without -march
 * flags. Points go in as number[], converted row by row so that no second full copy exists in JS.
 */
import type { BruteforceSearch } from 'hnswlib-node';
import { loadHnswlib } from './hnswlib-module';
import type { Dataset, Driver } from './driver';

export function hnswlibBruteforce(): Driver {
  let index: BruteforceSearch | undefined;
  let dim = 0;
  return {
    key: 'hnswlib',
    label: 'hnswlib-node BruteforceSearch',
    note: 'hnswlib-node 3.0.0 is single-threaded by construction (one query per call, one thread)',
    threads: 1,
    async unavailable() {
      return undefined;
    },
    async build(data: Dataset) {
      dim = data.dim;
      index = new (loadHnswlib().BruteforceSearch)('ip', dim);
      index.initIndex(data.n);
      const row = new Array<number>(dim);
      for (let i = 0; i < data.n; i++) {
        const base = i * dim;
        for (let j = 0; j < dim; j++) row[j] = data.vectors[base + j]!;
        index.addPoint(row, i);
      }
    },
    async search(queries, nq, k) {
      const out = new BigInt64Array(nq * k).fill(-1n);
      const query = new Array<number>(dim);
      for (let i = 0; i < nq; i++) {
        for (let j = 0; j < dim; j++) query[j] = queries[i * dim + j]!;
        const { neighbors } = index!.searchKnn(query, k);
        // hnswlib returns its top-k best first (the ip "distance" is 1 - dot).
        for (let j = 0; j < neighbors.length && j < k; j++) out[i * k + j] = BigInt(neighbors[j]!);
      }
      return out;
    },
    async free() {
      index = undefined; // no explicit free in hnswlib-node: the harness runs the GC after free()
    },
  };
}
