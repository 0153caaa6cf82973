/** cangen's own exact index: fused SIMD scan + top-k (the reference row). */
import { FlatIndex } from '../../lib';
import type { Dataset, Driver } from './driver';
import { rowIds } from './ids';

export function cangenFlat(threads: number): Driver {
  let index: FlatIndex | undefined;
  return {
    key: 'cangen-flat',
    label: 'cangen FlatIndex (ours)',
    threads,
    ours: true,
    async unavailable() {
      return undefined;
    },
    async build(data: Dataset) {
      index = new FlatIndex({ dim: data.dim, metric: 'ip', threads });
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
