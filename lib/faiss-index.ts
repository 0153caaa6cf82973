/**
 * A FAISS index described by a factory string ("Flat", "IVF1024,Flat", "IVF1024,PQ16", "HNSW32").
 * For experts and for comparison with cangen's own kernels; approximate kinds need train() first.
 */
import { InvalidArgumentError } from './errors';
import { metricCode } from './metric';
import { native } from './native';
import { float32Array } from './validate';
import { parseIndexOptions, VectorIndex, withCallerStack, type IndexOptions } from './vector-index';
import { withPrivateInputs } from './private-input';

export interface FaissIndexOptions extends IndexOptions {
  /** A FAISS index_factory description, e.g. 'Flat' or 'IVF256,PQ16'. */
  factory: string;
}

export class FaissIndex extends VectorIndex {
  readonly factory: string;

  constructor(options: FaissIndexOptions) {
    const o = parseIndexOptions(options, 'FaissIndex options', ['factory']);
    const factory = o.raw.factory;
    if (typeof factory !== 'string' || factory.length === 0) {
      throw new InvalidArgumentError(`Expected a FAISS factory string such as 'Flat' for FaissIndex options.factory but received ${String(factory)}`);
    }
    super(new (native().NativeIndex)('faiss', o.dim, metricCode(o.metric), o.threads, factory), o.dim, o.metric, o.threads);
    this.factory = factory;
  }

  /** Whether the index can take vectors (exact kinds always can). */
  get isTrained(): boolean {
    return this.open().isTrained();
  }

  /** Learns centroids and codebooks from a sample (n x dim) of the corpus. */
  async train(sample: Float32Array): Promise<void> {
    const stack = new Error();
    const handle = this.open();
    float32Array(sample, 'sample');
    await withCallerStack(withPrivateInputs([sample], ['sample'], (s) => handle.train(s)), stack);
  }
}
