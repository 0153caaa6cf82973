/**
 * A FAISS index described by a factory string, as a preset: an AdIndex of kind 'faiss'. For
 * experts and for comparison with cangen's own kernels; approximate kinds need train() first.
 * The factory strings accepted are those an AdIndex file can verify on load:
 * [OPQ<m>[_<d>],]IVF<n>,<Flat|PQ<m>[x<bits>][np]|SQ4|SQ6|SQ8|SQfp16>, HNSW<M>[,Flat] or Flat.
 */
import { AdIndex, type IndexPreset } from './ad-index';
import type { IndexOptions } from './flat-index';

export interface FaissIndexOptions extends IndexOptions {
  /** A FAISS index_factory description, e.g. 'Flat', 'IVF256,Flat', 'IVF256,PQ16' or 'HNSW32'. */
  factory: string;
  /** Keep full-precision vectors beside FAISS's codes (default false here: FAISS holds the ads alone). */
  storeVectors?: boolean;
  /** IVF: clusters visited per query (default 16). */
  nprobe?: number;
  /** HNSW: beam width of a search (default 64). */
  efSearch?: number;
}

const faissPreset: IndexPreset = {
  name: 'FaissIndex',
  optionNames: ['dim', 'metric', 'threads', 'factory', 'storeVectors', 'nprobe', 'efSearch'],
  defaults: { storeVectors: false },
  kind: 'faiss',
};

export class FaissIndex extends AdIndex {
  readonly factory: string;

  /**
   * @example
   * const index = new FaissIndex({ dim: 64, factory: 'IVF256,Flat' });
   * await index.train(sample);                      // n x 64 Float32Array
   * await index.add(ids, embeddings);
   */
  constructor(options: FaissIndexOptions) {
    super(options, undefined, faissPreset);
    this.factory = options.factory;
  }
}
