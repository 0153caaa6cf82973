/** FAISS 1.7.3 IndexFlatIP (built with AVX2) through cangen's addon: same binding, FAISS's kernel. */
import { FaissIndex } from '../../lib';
import type { Dataset, Driver } from './driver';
import { rowIds } from './ids';

export function cangenFaiss(threads: number): Driver {
  let index: FaissIndex | undefined;
  return {
    key: 'cangen-faiss',
    label: "cangen FaissIndex 'Flat'",
    note: 'FAISS 1.7.3 AVX2 build inside our addon; FAISS uses BLAS only from 20 queries up',
    threads,
    async unavailable() {
      return undefined;
    },
    async build(data: Dataset) {
      index = new FaissIndex({ dim: data.dim, metric: 'ip', factory: 'Flat', threads });
      await index.add(rowIds(data.n), data.vectors);
    },
    async search(queries, _nq, k) {
      return (await index!.search(queries, k, { threads })).ids;
    },
    async free() {
      index?.close();
      index = undefined;
    },
  };
}
