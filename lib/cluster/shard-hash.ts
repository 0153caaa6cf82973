/**
 * Which shard holds an ad: FNV-1a (32-bit) over the ad id's 8 bytes in little-endian two's
 * complement, modulo the shard count. The hash is fixed by this definition (offset basis
 * 2166136261, prime 16777619), needs no state, and gives the same shard in every process and
 * language; changing it would move ads between shards, so it is versioned in the shard map
 * (`hash: 'fnv1a32-le64'`).
 */
export const shardHashName = 'fnv1a32-le64';

const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** FNV-1a 32 of the id's 8 little-endian bytes, as an unsigned 32-bit integer. */
export function adIdHash(id: bigint): number {
  const lo = Number(BigInt.asUintN(32, id));
  const hi = Number(BigInt.asUintN(32, id >> 32n));
  let h = fnvOffset;
  for (const word of [lo, hi]) {
    for (let b = 0; b < 4; b++) {
      h ^= (word >>> (8 * b)) & 0xff;
      h = Math.imul(h, fnvPrime);
    }
  }
  return h >>> 0;
}

/** The shard (0 to shards-1) of an ad id. */
export function shardOf(id: bigint, shards: number): number {
  return adIdHash(id) % shards;
}

/** Row indices of `ids` grouped by shard: entry s lists the rows whose ad belongs to shard s, in order. */
export function rowsByShard(ids: BigInt64Array, shards: number): number[][] {
  const rows: number[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; i < ids.length; i++) rows[shardOf(ids[i]!, shards)]!.push(i);
  return rows;
}
