/** The scorer's side of the addon (bindings/scorer_binding.cc). */
import type { NativeAdIndex, NativeFilter, NativeSearchResult } from '../native';

/** The model as the addon takes it: shapes from config.json, tensors by name from model.safetensors. */
export interface NativeScorerModel {
  kind: 'dot' | 'mlp' | 'mol';
  userDim: number;
  itemDim: number;
  heads: number;
  activation: 'relu' | 'silu';
  normEps: number;
  useUser?: boolean;
  useItem?: boolean;
  useCross?: boolean;
  hidden?: number[];
  queryComponents?: number;
  itemComponents?: number;
  componentDim?: number;
  gatingWidth?: number;
  temperature?: number;
  tensors: Record<string, Float32Array>;
}

export interface NativeScorerSearchOptions {
  /** A filter compiled by the index the scorer is attached to. */
  filter?: NativeFilter;
  eligibleMask?: Uint8Array;
  eligibleIds?: BigInt64Array;
  candidates?: BigInt64Array;
  candidatesPerUser?: number;
  threads: number;
  fused: boolean;
  device: number;
  gpuDevice: number;
  /** One Int32 over a SharedArrayBuffer: the CPU scan stops (ERR_ABORTED) once it is non-zero. */
  cancel?: Int32Array;
}

export interface NativeScorer {
  add(ids: BigInt64Array, embeddings: Float32Array): Promise<void>;
  attach(index: NativeAdIndex): Promise<void>;
  search(users: Float32Array, headWeights: Float32Array, k: number, options: NativeScorerSearchOptions): Promise<NativeSearchResult>;
  score(users: Float32Array, headWeights: Float32Array, ids: BigInt64Array | null, threads: number): Promise<Float32Array>;
  size(): number;
  info(): { simd: string; flopsPerPair: number };
  close(): void;
}

export type NativeScorerConstructor = new (model: NativeScorerModel, threads: number) => NativeScorer;
