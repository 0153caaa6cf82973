/**
 * Clustered synthetic embeddings for the ANN benchmark: a mixture of isotropic Gaussians.
 * Centers are standard normal; each cluster has its own spread; each point is its center plus
 * its own noise. Corpus and queries share the centers (same distribution) but not the points.
 */
import { normalMatrix, seedFor, uniform } from '../data';

export interface MixtureSpec {
  /** Number of Gaussian components. */
  centers: number;
  /** Per-cluster noise standard deviation is drawn uniformly from [min, max]. */
  sigmaMin: number;
  sigmaMax: number;
}

export const defaultMixture: MixtureSpec = { centers: 1000, sigmaMin: 0.6, sigmaMax: 1.0 };

/**
 * rows x dim points of the mixture, row-major, in a buffer of its own (byteOffset 0).
 * `purpose` ('corpus' or 'queries') picks the point seed; the centers depend only on dim.
 */
export function mixtureMatrix(rows: number, dim: number, purpose: string, spec: MixtureSpec = defaultMixture): Float32Array {
  const centers = normalMatrix(spec.centers, dim, seedFor('ann-centers', spec.centers, dim));
  const spreadRng = uniform(seedFor('ann-sigma', spec.centers, dim));
  const sigma = Float32Array.from({ length: spec.centers }, () => spec.sigmaMin + (spec.sigmaMax - spec.sigmaMin) * spreadRng());
  const pick = uniform(seedFor(`ann-${purpose}-assign`, rows, dim));
  const out = normalMatrix(rows, dim, seedFor(`ann-${purpose}`, rows, dim));
  for (let i = 0; i < rows; i++) {
    const c = Math.min(spec.centers - 1, Math.floor(pick() * spec.centers));
    const s = sigma[c]!;
    const row = i * dim;
    const center = c * dim;
    for (let j = 0; j < dim; j++) out[row + j] = centers[center + j]! + s * out[row + j]!;
  }
  return out;
}
