/**
 * The exact index as a preset: an AdIndex of kind 'flat' (every search scans every ad with
 * cangen's fused SIMD or CUDA kernels), taking only the options an exact index has.
 */
import { AdIndex, type IndexPreset, type ScanPrecision } from './ad-index';
import type { Metric } from './metric';

export interface IndexOptions {
  /** Embedding dimension (1 to 65536). */
  dim: number;
  /** 'ip' (default), 'l2' or 'cosine'. */
  metric?: Metric;
  /** Threads per operation; 0 (default) uses every core. */
  threads?: number;
  /** 'bf16' or 'int8': scan a reduced copy first, re-rank in fp32; the same answers, faster (AdIndexOptions.precision). */
  precision?: ScanPrecision;
}

const flatPreset: IndexPreset = { name: 'FlatIndex', optionNames: ['dim', 'metric', 'threads', 'precision'], kind: 'flat' };

export class FlatIndex extends AdIndex {
  /**
   * @example
   * const index = new FlatIndex({ dim: 64, metric: 'cosine' });
   * await index.add([1, 2], embeddings);            // 2 x 64 Float32Array
   * const results = await index.search(query, 10);  // 1 x 64 Float32Array
   */
  constructor(options: IndexOptions) {
    super(options, undefined, flatPreset);
  }
}
