/**
 * A map from 64-bit ad ids (bigint) to dense row numbers, kept in typed arrays (open addressing,
 * linear probing) rather than a Map<bigint>: a million ads are three flat arrays that the garbage
 * collector never walks. Rows are never deleted; a caller marks a row dead in its own columns and
 * reuses it when the id comes back.
 */
const two32 = 4294967296;
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
const low32 = 0xffffffffn;

export class IdMap {
  private lo: Uint32Array;
  private hi: Uint32Array;
  private rows: Int32Array;
  private mask: number;
  private count = 0;
  // Halves of the id last split by split(): no allocation per lookup.
  private splitLo = 0;
  private splitHi = 0;

  constructor(capacity = 1024) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.lo = new Uint32Array(size);
    this.hi = new Uint32Array(size);
    this.rows = new Int32Array(size).fill(-1);
    this.mask = size - 1;
  }

  /** Ids ever added. */
  get size(): number {
    return this.count;
  }

  /** The row of `id`, or -1. */
  get(id: bigint): number {
    this.split(id);
    const lo = this.splitLo;
    const hi = this.splitHi;
    let at = hash(lo, hi) & this.mask;
    for (;;) {
      const row = this.rows[at]!;
      if (row < 0) return -1;
      if (this.lo[at] === lo && this.hi[at] === hi) return row;
      at = (at + 1) & this.mask;
    }
  }

  /** Sets the row of `id` (adding the id, or moving it to another row). */
  set(id: bigint, row: number): void {
    if ((this.count + 1) * 2 > this.rows.length) this.grow();
    this.split(id);
    this.place(this.splitLo, this.splitHi, row, true);
  }

  private place(lo: number, hi: number, row: number, counting: boolean): void {
    let at = hash(lo, hi) & this.mask;
    for (;;) {
      const existing = this.rows[at]!;
      if (existing < 0) {
        this.lo[at] = lo;
        this.hi[at] = hi;
        this.rows[at] = row;
        if (counting) this.count++;
        return;
      }
      if (this.lo[at] === lo && this.hi[at] === hi) {
        this.rows[at] = row;
        return;
      }
      at = (at + 1) & this.mask;
    }
  }

  private split(id: bigint): void {
    if (id >= 0n && id <= maxSafe) {
      const x = Number(id);
      const lo = x % two32;
      this.splitLo = lo;
      this.splitHi = (x - lo) / two32;
    } else {
      this.splitLo = Number(id & low32);
      this.splitHi = Number((id >> 32n) & low32);
    }
  }

  private grow(): void {
    const { lo, hi, rows } = this;
    const size = rows.length * 2;
    this.lo = new Uint32Array(size);
    this.hi = new Uint32Array(size);
    this.rows = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let i = 0; i < rows.length; i++) if (rows[i]! >= 0) this.place(lo[i]!, hi[i]!, rows[i]!, false);
  }
}

function hash(lo: number, hi: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Grows a typed array to at least `length` (doubling), keeping its contents. */
export function grown<T extends Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array | BigInt64Array>(array: T, length: number, fill?: number | bigint): T {
  if (length <= array.length) return array;
  let capacity = Math.max(16, array.length);
  while (capacity < length) capacity *= 2;
  const out = new (array.constructor as new (n: number) => T)(capacity);
  out.set(array as never);
  if (fill !== undefined) (out as unknown as { fill(v: unknown, start: number): void }).fill(fill, array.length);
  return out;
}
