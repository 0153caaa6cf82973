/**
 * Loads the native addon once: a prebuilt binary from prebuilds/, or the one built from source
 * in build/Release. When neither loads, the error says why and what to do.
 */
import { join } from 'node:path';
import { errorFromCode, NativeLoadError } from './errors';

export interface NativeSearchResult {
  ids: BigInt64Array;
  scores: Float32Array;
  counts: Uint32Array;
  gpuFallback?: string;  // a GPU search run on the CPU: why
}

/** A compiled filter; its index keeps it current through every write until it is collected. */
export interface NativeFilter {
  count(): number;
}

export interface NativeAnnConfig {
  kind: number;
  dim: number;
  metric: number;
  nlist?: number;
  pqBytes?: number;
  opq?: boolean;
  hnswM?: number;
  efConstruction?: number;
  factory?: string;
  storeVectors?: boolean;
  nprobe?: number;
  efSearch?: number;
  rerank?: number;
  /** 0 fp32, 1 bf16, 2 int8. */
  precision?: number;
}

export interface NativeFilterSpec {
  active?: boolean;
  budgets?: Uint32Array;
  advertisers?: Uint32Array;
  campaigns?: Uint32Array;
  categories?: Uint32Array;
  geos?: Uint32Array;
  excludedAdvertisers?: Uint32Array;
  ids?: BigInt64Array;
}

export interface NativeAdIndexStats {
  live: number;
  deleted: number;
  slots: number;
  bytes: number;
  vectorBytes: number;
  indexBytes: number;
  catalogBytes: number;
  trained: boolean;
  generation: number;
  filters: number;
  filterCompiles: number;
  filterSlotUpdates: number;
  reducedQueries: number;
  reducedReranked: number;
}

export interface NativeAdIndex {
  train(sample: Float32Array): Promise<void>;
  /** insertOnly: an id already present rejects the whole batch (DuplicateId). */
  upsert(ids: BigInt64Array, vectors: Float32Array, attributes: Uint32Array | null, insertOnly: boolean): Promise<void>;
  remove(ids: BigInt64Array): Promise<number>;
  setAttributes(ids: BigInt64Array, attributes: Uint32Array): Promise<number>;
  // Positional numbers (0: the index's setting; rerank -1), not an options object: reading
  // properties by name in the addon cost more than a tiny search.
  search(
    queries: Float32Array,
    k: number,
    nprobe: number,
    efSearch: number,
    rerank: number,
    threads: number,
    device: number,
    gpuDevice: number,
    // One Int32 over a SharedArrayBuffer; the search stops (ERR_ABORTED) once it is non-zero.
    cancel: Int32Array | null,
    filter: NativeFilter | null,
    // A filter description compiled inside this search (under its lock) and not kept.
    spec?: NativeFilterSpec,
  ): Promise<NativeSearchResult>;
  compileFilter(spec: NativeFilterSpec): Promise<NativeFilter>;
  eligibleIds(filter: NativeFilter): Promise<BigInt64Array>;
  compact(): Promise<void>;
  stats(): Promise<NativeAdIndexStats>;
  save(path: string): Promise<void>;
  size(): number;
  config(): Required<NativeAnnConfig>;
  generation(): number;
  isTrained(): boolean;
  close(): void;
}

export interface NativeBuildInfo {
  version: string;
  faissVersion: string;
  faissSimd: string;
  scanSimd: string;
  /** The bf16 scan's kernel: "avx512-bf16" (VDPBF16PS) or "avx2-bf16". */
  bf16Simd: string;
  /** The int8 scan's kernel: "avx512-vnni" (VPDPBUSD) or "avx2-int8". */
  int8Simd: string;
  /** The sequence encoder's linear kernel: "avx512", "avx2" or "scalar". */
  sequenceSimd: string;
  cudaCompiled: boolean;
  cudaDevices: number;
  cudaDevice: string;
  threads: number;
  threadSource: string;
  affinityCpus: number;
  cgroupCpus: number;
  compiler: string;
}

export interface NativeLimits {
  threads: number;
  resultBytes: number;
  activeThreads: number;
  peakThreads: number;
  hnswVisitedBytes: number;
  inlineCalls: number;
}

// ---- the learned scorer (bindings/scorer_binding.cc) ----

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
  /** Bf16 MLP and MoL scorers: candidates re-scored in fp32 per user = k x this. */
  rerankFactor?: number;
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
  info(): NativeScorerInfo;
  close(): void;
}

export interface NativeScorerInfo {
  simd: string;
  flopsPerPair: number;
  precision: 'fp32' | 'bf16' | 'int8';
  /** The reduced scan's kernels ('avx512-bf16', 'avx2-bf16', 'avx512-vnni', 'avx2-int8'), or 'none'. */
  reducedSimd: string;
  /** Bytes of the per-ad planes: fp32, plus the reduced copy. */
  bytesPerAd: number;
}

export type NativeScorerConstructor = new (model: NativeScorerModel, threads: number, precision: 'fp32' | 'bf16' | 'int8') => NativeScorer;

// ---- the user-sequence encoder (bindings/sequence_binding.cc) ----

/** The model as the addon takes it: config.json's architecture, tensors by name from model.safetensors. */
export interface NativeSequenceModel {
  kind: 'hstu' | 'sasrec';
  dim: number;
  heads: number;
  layers: number;
  maxLen: number;
  shortWindow: number;
  timeBuckets: number;
  useTimes: boolean;
  longTerm: boolean;
  interests: number;
  normalizeQuery: boolean;
  numItems: number;
  numActions: number;
  /** items.feature_ids as (numItems + 1) x featuresPerItem int32 (side information only). */
  featureIds?: Int32Array;
  featuresPerItem?: number;
  tensors: Record<string, Float32Array>;
}

export interface NativeSequenceEncoder {
  /** users x interests x dim query embeddings; offsets has users + 1 entries. device: 0 cpu, 1 gpu (CUDA device gpuDevice). */
  encode(
    items: Int32Array, offsets: Uint32Array, actions: Int32Array | null, times: Float64Array | null, threads: number, device: 0 | 1, gpuDevice: number,
  ): Promise<Float32Array>;
  close(): void;
}

export interface NativeSequenceSessionStats {
  sessions: number;
  bytes: number;
  maxBytes: number;
  reusedEvents: number;
  encodedEvents: number;
  evictions: number;
}

export interface NativeSequenceSessions {
  encode(items: Int32Array, offsets: Uint32Array, actions: Int32Array | null, times: Float64Array | null, threads: number, users: string[]): Promise<Float32Array>;
  forget(users: string[]): void;
  stats(): NativeSequenceSessionStats;
  close(): void;
}

export interface NativeAddon {
  NativeAdIndex: {
    new (config: NativeAnnConfig, threads: number): NativeAdIndex;
    load(path: string, threads: number): Promise<NativeAdIndex>;
  };
  NativeScorer: NativeScorerConstructor;
  NativeSequenceEncoder: new (model: NativeSequenceModel) => NativeSequenceEncoder;
  NativeSequenceSessions: new (encoder: NativeSequenceEncoder, maxBytes: number) => NativeSequenceSessions;
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  buildInfo(): NativeBuildInfo;
  measureCeilings(threads: number, megabytes: number): Promise<{ peakFlops: number; peakBf16Flops: number; peakInt8Ops: number; readBandwidth: number }>;
  /** Zeroed memory allocated and touched on a worker (lib/private-input.ts). */
  privateBuffer(bytes: number): Promise<ArrayBuffer>;
  limits(resetPeak: boolean): NativeLimits;
  setLimits(threads: number, resultBytes: number): void;
}

const packageRoot = join(__dirname, '..');
let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  // Several searches run at once on the libuv pool, each with its own OpenMP team: idle team
  // threads must sleep rather than spin, or they steal the cores the other searches need.
  // libgomp reads this once, when the addon loads it; a value the user set is kept.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  let loaded: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('node-gyp-build')(packageRoot) as NativeAddon;
  } catch (error) {
    throw new NativeLoadError(explainLoadFailure(error));
  }
  loaded.setErrorFactory(errorFromCode);
  addon = loaded;
  return loaded;
}

function explainLoadFailure(error: unknown): string {
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  const fixes = [
    `cangen's native addon could not be loaded on ${process.platform}-${process.arch} (Node ${process.version}):`,
    `  ${reason}`,
    'Possible fixes:',
    '  - No binary for this platform: build from source with `CANGEN_BUILD_FROM_SOURCE=1 npm rebuild cangen`',
    '    (needs cmake >= 3.18, g++ >= 10, libopenblas-dev; see the README section "Building").',
    '  - "libgomp.so.1: cannot open shared object file": install the OpenMP runtime (apt install libgomp1).',
    '  - "illegal instruction" or a crash on load: this CPU lacks AVX2 + FMA, which the prebuilt binary needs;',
    '    build from source with CANGEN_FAISS_OPT_LEVEL=generic and a lower baseline (see "Building").',
    '  - Installed with --ignore-scripts and no prebuild: run `npm rebuild cangen`.',
  ];
  return fixes.join('\n');
}
