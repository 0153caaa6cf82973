/** Ids 0..n-1 (the row numbers), shared by the cangen drivers. */
export function rowIds(n: number): BigInt64Array {
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  return ids;
}
