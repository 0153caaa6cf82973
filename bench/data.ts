/** Deterministic benchmark data: standard normal float32 matrices from a fixed seed. */

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function uniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed that differs for every (purpose, n, dim). */
export function seedFor(purpose: string, n: number, dim: number, base = 20240611): number {
  let h = base >>> 0;
  for (const c of `${purpose}:${n}:${dim}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** rows x dim standard normal values (Box-Muller), row-major, in a buffer of its own. */
export function normalMatrix(rows: number, dim: number, seed: number): Float32Array {
  const out = new Float32Array(rows * dim);
  const next = uniform(seed);
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - next(); // (0, 1]: log stays finite
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
