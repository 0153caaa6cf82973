/** Every engine of the exact-search benchmark, in table order (ours first: it is the reference). */
import { cangenFaiss, cangenFlat, cangenFlatBf16, cangenFlatInt8 } from './cangen';
import type { Driver } from './driver';
import { hnswlibBruteforce } from './hnswlib';
import { pythonFaiss } from './python-faiss';
import { usearchExact } from './usearch';

export const engines: ReadonlyArray<{ key: string; create: (threads: number) => Driver }> = [
  { key: 'cangen-flat', create: cangenFlat },
  { key: 'cangen-flat-bf16', create: cangenFlatBf16 },
  { key: 'cangen-flat-int8', create: cangenFlatInt8 },
  { key: 'cangen-faiss', create: cangenFaiss },
  { key: 'usearch', create: usearchExact },
  { key: 'hnswlib', create: () => hnswlibBruteforce() },
  { key: 'python-faiss', create: pythonFaiss },
];

export type { Dataset, Driver, MeasurePlan, Measurement } from './driver';
export { measure, median } from './driver';
export { pythonFaissVersion } from './python-faiss';
