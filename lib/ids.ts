/** Ad ids: 64-bit integers given as a BigInt64Array, or as numbers or bigints. */
import { invalid } from './validate';

export type IdsInput = BigInt64Array | ArrayLike<number | bigint>;

const maxInt64 = (1n << 63n) - 1n;

/** Converts ids to the BigInt64Array the addon takes; ids must be >= 0 (-1 marks "no result"). */
export function toIdArray(ids: unknown, name = 'ids'): BigInt64Array {
  if (ids instanceof BigInt64Array) {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 0n) throw invalid('ids >= 0', `${name}[${i}]`, ids[i]);
    }
    return ids;
  }
  if (ids === null || typeof ids !== 'object' || typeof (ids as ArrayLike<unknown>).length !== 'number') {
    throw invalid('a BigInt64Array or an array of integer ids', name, ids);
  }
  const list = ids as ArrayLike<unknown>;
  const out = new BigInt64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const id = list[i];
    if (typeof id === 'number') {
      if (!Number.isSafeInteger(id) || id < 0) throw invalid('a safe integer >= 0 (or a bigint)', `${name}[${i}]`, id);
      out[i] = BigInt(id);
    } else if (typeof id === 'bigint') {
      if (id < 0n || id > maxInt64) throw invalid('a bigint between 0 and 2^63-1', `${name}[${i}]`, id);
      out[i] = id;
    } else {
      throw invalid('a number or bigint id', `${name}[${i}]`, id);
    }
  }
  return out;
}
