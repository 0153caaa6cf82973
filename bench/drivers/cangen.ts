/**
 * cangen's two exact AdIndex kinds through the same addon: our fused SIMD scan + top-k (kind
 * 'flat', the reference row) and FAISS 1.7.3's IndexFlatIP built with AVX2 (kind 'faiss' with
 * the factory string 'Flat': same binding, FAISS's kernel), each through its preset.
 */
import { FaissIndex, FlatIndex, type AdIndex } from '../../lib';
import type { Dataset, Driver } from './driver';
import { rowIds } from './ids';

function cangenDriver(
  identity: Pick<Driver, 'key' | 'label' | 'note' | 'ours' | 'precision'>,
  create: (dim: number, threads: number) => AdIndex,
) {
  return (threads: number): Driver => {
    let index: AdIndex | undefined;
    return {
      ...identity,
      threads,
      async unavailable() {
        return undefined;
      },
      async build(data: Dataset) {
        index = create(data.dim, threads);
        await index.add(rowIds(data.n), data.vectors);
      },
      async search(queries, _nq, k) {
        return (await index!.search(queries, k, { threads })).ids;
      },
      async bytesPerAd() {
        return (await index!.stats()).bytesPerAd;
      },
      async free() {
        index?.close();
        index = undefined;
      },
    };
  };
}

export const cangenFlat = cangenDriver(
  { key: 'cangen-flat', label: 'cangen FlatIndex (ours)', ours: true, precision: 'fp32' },
  (dim, threads) => new FlatIndex({ dim, metric: 'ip', threads }),
);

/** The same index scanning a bf16 or int8 copy first and re-ranking in fp32 (answers equal the fp32 row's). */
const reducedFlat = (precision: 'bf16' | 'int8') =>
  cangenDriver(
    { key: `cangen-flat-${precision}`, label: `cangen FlatIndex ${precision} (ours)`, precision },
    (dim, threads) => new FlatIndex({ dim, metric: 'ip', threads, precision }),
  );
export const cangenFlatBf16 = reducedFlat('bf16');
export const cangenFlatInt8 = reducedFlat('int8');

export const cangenFaiss = cangenDriver(
  {
    key: 'cangen-faiss',
    label: "cangen FaissIndex 'Flat'",
    note: 'FAISS 1.7.3 AVX2 build inside our addon; FAISS uses BLAS only from 20 queries up',
  },
  (dim, threads) => new FaissIndex({ dim, metric: 'ip', factory: 'Flat', threads }),
);
