/** Clustered synthetic embeddings: what ads look like (topics), where ANN recall is meaningful. */
import { rng } from './random';

export function clusteredVectors(n: number, dim: number, clusters: number, seed: number, spread = 0.3): Float32Array {
  const next = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const centers = Float32Array.from({ length: clusters * dim }, gauss);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(next() * clusters);
    for (let j = 0; j < dim; j++) out[i * dim + j] = centers[c * dim + j]! + spread * gauss();
  }
  return out;
}

/** Fraction of the reference ids found, averaged over queries. */
export function recallAt(got: { row(i: number): { ids: BigInt64Array } }, reference: { ids: bigint[] }[]): number {
  let hits = 0;
  let total = 0;
  reference.forEach((expected, q) => {
    const found = new Set(got.row(q).ids);
    for (const id of expected.ids) if (found.has(id)) hits++;
    total += expected.ids.length;
  });
  return total === 0 ? 1 : hits / total;
}
