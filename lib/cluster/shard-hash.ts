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

/** The shard of every ad of an advertiser, under placement 'advertiser' (the same hash over the advertiser number). */
export function shardOfAdvertiser(advertiser: number, shards: number): number {
  return adIdHash(BigInt(advertiser)) % shards;
}

/** Row indices grouped by shard: entry s lists, in order, the rows `shardOfRow` puts on shard s. */
export function rowsByShard(rows: number, shards: number, shardOfRow: (row: number) => number): number[][] {
  const out: number[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; i < rows; i++) out[shardOfRow(i)]!.push(i);
  return out;
}
