/** The exact index: every search scans every ad with cangen's fused SIMD (or CUDA) kernels. */
import { native } from './native';
import { metricCode } from './metric';
import { parseIndexOptions, VectorIndex, type IndexOptions } from './vector-index';

export class FlatIndex extends VectorIndex {
  /**
   * @example
   * const index = new FlatIndex({ dim: 64, metric: 'cosine' });
   * await index.add([1, 2], embeddings);            // 2 x 64 Float32Array
   * const results = await index.search(query, 10);  // 1 x 64 Float32Array
   */
  constructor(options: IndexOptions) {
    const o = parseIndexOptions(options, 'FlatIndex options');
    super(new (native().NativeIndex)('flat', o.dim, metricCode(o.metric), o.threads), o.dim, o.metric, o.threads);
  }
}
