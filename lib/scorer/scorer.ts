/**
 * A learned scorer over a table of ads (dot, MLP or Mixture-of-Logits, with scenario-blended heads),
 * loaded from a model directory. Every scan runs off the main thread and keeps only the top-k.
 */
import { AdIndex, CompiledFilter, type ScanPrecision } from '../ad-index';
import { withCancel } from '../cancel';
import { defaults, maxGpuK, maxK } from '../defaults';
import { ClosedError, DimensionMismatchError, InvalidArgumentError } from '../errors';
import { toIdArray, type IdsInput } from '../ids';
import { native, type NativeScorer, type NativeScorerInfo } from '../native';
import { SearchResults } from '../results';
import { float32Array, integerIn, invalid, knownOptions, oneOf, wholeRows } from '../validate';
import { withCallerStack } from '../caller-stack';
import type { DeviceChoice } from '../device';
import type { ScorerConfig, ScorerKind } from './config';
import { UnknownHeadError, UnknownScenarioError } from './errors';
import { readModelDirectory, toNativeModel } from './model';
import { withPrivateInputs } from '../private-input';

export interface ScorerOptions {
  /** Threads per operation; 0 (default) uses every core. */
  threads?: number;
  /**
   * The full scan's precision (default 'fp32'). 'bf16' (kinds 'mlp', 'mol' and 'dot') or 'int8'
   * (kind 'dot' only) keep a reduced copy of the per-ad planes beside the fp32 ones (see
   * info().bytesPerAd); a full scan reads it first and scores a window of candidates per user
   * in fp32, so every returned score is the ad's fp32 score. Kind 'dot': the window comes from a
   * proven error bound and the answer equals the fp32 scan's. Kinds 'mlp' and 'mol': the window is
   * the best k x rerankFactor by bf16 score, and the answer's recall against fp32 is measured, not
   * guaranteed (README, "Scorer precision"). Candidate lists and score() always run in fp32; the
   * GPU and the unfused mode have no reduced scan (a typed error).
   */
  precision?: ScanPrecision;
}

/** How a request blends the heads: a scenario of config.json, or weights by head name. */
export interface BlendOptions {
  /** A scenario name from config.json (default: its defaultScenario, or the only head). */
  scenario?: string;
  /** Weights by head name (heads left out weigh 0); instead of a scenario. */
  weights?: Record<string, number>;
}

export interface ScorerSearchOptions extends BlendOptions {
  /**
   * Eligible ads: a filter compiled by an AdIndex (`await adIndex.filter({ ... })`: applied
   * inside the scan when the scorer is attached to that index, else turned into its ids), a list
   * of eligible ids (ids the scorer does not hold are ignored), or, for a scorer with its own
   * ads, a Uint8Array with one byte per ad in insertion order (non-zero = eligible). Default:
   * every (live) ad.
   */
  eligible?: Uint8Array | IdsInput | CompiledFilter;
  /**
   * Rank only these ads: users x K' ids (-1 entries skipped, repeats ranked once), e.g. a first
   * stage's SearchResults. Default: every (eligible) ad.
   */
  candidates?: BigInt64Array | SearchResults;
  /** 'cpu' (default), 'gpu' or 'auto'. Candidate lists are ranked on the CPU. */
  device?: DeviceChoice;
  gpuDevice?: number;
  /** Threads for this call; 0 (default) uses the scorer's setting. */
  threads?: number;
  /** 'fused' (default): top-k kept during the scan. 'unfused': all scores stored, then selected (for comparison). */
  mode?: 'fused' | 'unfused';
  /** Stops the CPU scan between chunks of ads when it aborts; the promise rejects with AbortedError (`ERR_ABORTED`). */
  signal?: AbortSignal;
  /**
   * A bf16 'mlp' or 'mol' scorer's full scan: ads re-scored in fp32 per user = k x this
   * (1 to 64, default 4). More: higher recall, slower. Any other scorer rejects it.
   */
  rerankFactor?: number;
}

/** What `LearnedScorer.info()` reports (see there). */
export type ScorerInfo = NativeScorerInfo;

const searchOptionNames = ['scenario', 'weights', 'eligible', 'candidates', 'device', 'gpuDevice', 'threads', 'mode', 'signal', 'rerankFactor'] as const;
const scorerPrecisions: readonly ScanPrecision[] = ['fp32', 'bf16', 'int8'];
/** The largest rerankFactor (native/scorer/scorer.h kMaxRerankFactor). */
const maxRerankFactor = 64;
const blendOptionNames = ['scenario', 'weights', 'threads'] as const;

export class LearnedScorer {
  readonly config: ScorerConfig;
  readonly threads: number;
  readonly precision: ScanPrecision;
  private handle: NativeScorer | undefined;
  private attachedTo: AdIndex | undefined;

  private constructor(config: ScorerConfig, handle: NativeScorer, threads: number, precision: ScanPrecision) {
    this.config = config;
    this.handle = handle;
    this.threads = threads;
    this.precision = precision;
  }

  /**
   * Loads a model directory (config.json + model.safetensors; see docs/SCORERS.md). A missing,
   * truncated or corrupt file, or weights that contradict the config, reject with ModelFormatError.
   * @example
   * const scorer = await LearnedScorer.load('models/ads-mlp');
   * await scorer.add(adIds, adEmbeddings);          // n x itemDim
   * const top = await scorer.search(users, 100, { scenario: 'search' });
   */
  static async load(dir: string, options?: ScorerOptions): Promise<LearnedScorer> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalid('a model directory path', 'dir', dir);
    const o = knownOptions(options, 'scorer options', ['threads', 'precision']);
    const threads = integerIn(o.threads ?? defaults.threads, 'options.threads', 0, 4096);
    const precision = oneOf(o.precision ?? 'fp32', 'options.precision', scorerPrecisions);
    const model = await readModelDirectory(dir);
    if (precision === 'int8' && model.config.kind !== 'dot') {
      throw new InvalidArgumentError(
        `Expected precision 'fp32' or 'bf16' for a scorer of kind '${model.config.kind}': int8 is for kind 'dot' (in an MLP or MoL it would reach only the per-ad inputs, a fraction of the work; they scan in bf16)`,
      );
    }
    const Native = native().NativeScorer;
    return new LearnedScorer(model.config, new Native(toNativeModel(model), threads, precision), threads, precision);
  }

  get kind(): ScorerKind {
    return this.config.kind;
  }
  get userDim(): number {
    return this.config.userDim;
  }
  get itemDim(): number {
    return this.config.itemDim;
  }
  get heads(): readonly string[] {
    return this.config.heads;
  }
  get scenarios(): readonly string[] {
    return Object.keys(this.config.scenarios);
  }
  /** Number of ads: its own, or the live ads of the index it is attached to. */
  get size(): number {
    return this.open().size();
  }
  get closed(): boolean {
    return this.handle === undefined;
  }
  /**
   * The SIMD level of the CPU kernels, the FLOPs one (user, ad) score costs, the scan precision,
   * the reduced scan's kernels ('none' for fp32) and the bytes each ad takes (fp32 planes plus the
   * reduced copy).
   */
  info(): ScorerInfo {
    return this.open().info();
  }

  /** The index this scorer reads its ads from (attach()), if any. */
  get attachedIndex(): AdIndex | undefined {
    return this.attachedTo;
  }

  /**
   * Reads the ads from `index` from now on instead of holding its own: what the model needs of
   * each ad is precomputed into the index's slots (now for every ad, then by every upsert, and
   * renumbered by compaction), so the scorer shares the index's ids, removals and compiled
   * filters. The index's dim must be the model's itemDim and it must keep its vectors (kind
   * 'flat' or 'hnsw', or 'ivf-pq', 'ivf-sq8' or 'faiss' with storeVectors); the scorer must hold
   * no ads of its own. The scorer sees
   * the vectors as the index stores them (unit length for 'cosine').
   * @example
   * const index = new AdIndex({ dim: 64, kind: 'hnsw' });
   * const scorer = await LearnedScorer.load('models/ads-mol');
   * await scorer.attach(index);
   * await index.upsert(adIds, adEmbeddings);                       // the scorer sees them too
   * const eligible = await index.filter({ active: true, geos: [3] });
   * const top = await scorer.search(users, 100, { eligible });     // filtered inside the scan
   */
  async attach(index: AdIndex): Promise<void> {
    const handle = this.open();
    if (!(index instanceof AdIndex)) throw invalid('an AdIndex', 'index', index);
    if (index.dim !== this.itemDim) {
      throw new DimensionMismatchError(`Expected an index of dim ${this.itemDim} (the model's itemDim) but received dim ${index.dim}`);
    }
    await withCallerStack(handle.attach(index.open()));
    this.attachedTo = index;
  }

  /**
   * Adds ads (embeddings: ids.length x itemDim, row-major), precomputing what depends on the ad
   * alone. All or nothing. `embeddings` is copied before any worker reads it (see AdIndex.upsert).
   * An attached scorer takes no ads: write them to its index.
   */
  async add(ids: IdsInput, embeddings: Float32Array): Promise<void> {
    const handle = this.open();
    if (this.attachedTo) throw new InvalidArgumentError('Expected ads written to the index this scorer is attached to (index.upsert), not added to the scorer');
    const idArray = toIdArray(ids);
    float32Array(embeddings, 'embeddings');
    if (embeddings.length !== idArray.length * this.itemDim) {
      throw new DimensionMismatchError(
        `Expected ${idArray.length} x itemDim ${this.itemDim} = ${idArray.length * this.itemDim} values for embeddings but received ${embeddings.length}`,
      );
    }
    if (idArray.length === 0) return;
    await withCallerStack(withPrivateInputs([idArray, embeddings], ['ids', 'embeddings'], (i, e) => handle.add(i, e)));
  }

  /** The head weights a request uses: from a scenario, from weights by name, or the default. */
  headWeights(blend: BlendOptions = {}): Float32Array {
    const { scenario, weights } = blend;
    const out = new Float32Array(this.heads.length);
    if (scenario !== undefined && weights !== undefined) {
      throw new InvalidArgumentError('Expected either options.scenario or options.weights, not both');
    }
    let byName: Record<string, number>;
    if (weights !== undefined) {
      if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) throw invalid('an object { head: weight }', 'options.weights', weights);
      byName = weights;
    } else {
      const name = scenario ?? this.config.defaultScenario;
      if (name === undefined) {
        if (this.heads.length === 1) return out.fill(1);
        throw new InvalidArgumentError(
          `Expected options.scenario (one of ${this.scenarios.map((s) => `'${s}'`).join(', ') || 'none defined'}) or options.weights: this model has ${this.heads.length} heads and no defaultScenario`,
        );
      }
      if (typeof name !== 'string' || !(name in this.config.scenarios)) {
        throw new UnknownScenarioError(
          `Unknown scenario ${JSON.stringify(name)}: this model defines ${this.scenarios.map((s) => `'${s}'`).join(', ') || 'no scenarios'}`,
        );
      }
      byName = this.config.scenarios[name]!;
    }
    for (const [head, w] of Object.entries(byName)) {
      const h = this.heads.indexOf(head);
      if (h < 0) throw new UnknownHeadError(`Unknown head '${head}': this model's heads are ${this.heads.map((x) => `'${x}'`).join(', ')}`);
      if (typeof w !== 'number' || !Number.isFinite(w)) throw invalid('a finite number', `weights.${head}`, w);
      out[h] = w;
    }
    return out;
  }

  /**
   * The k best ads for each user (users: nu x userDim). Rows with fewer than k eligible ads are
   * padded with id -1 and score NaN. Scores are the blended head outputs, larger is better.
   */
  async search(users: Float32Array, k: number, options?: ScorerSearchOptions): Promise<SearchResults> {
    const handle = this.open();
    const nu = this.checkUsers(users);
    const o = knownOptions(options, 'search options', searchOptionNames) as ScorerSearchOptions;
    const weights = this.headWeights(o);
    let device = oneOf(o.device ?? defaults.device, 'options.device', ['cpu', 'gpu', 'auto']);
    // 'auto' picks the GPU only where it can run the request: fp32 scans.
    if (device === 'auto') device = native().buildInfo().cudaDevices > 0 && o.candidates === undefined && this.precision === 'fp32' ? 'gpu' : 'cpu';
    integerIn(k, 'k', 1, device === 'gpu' ? maxGpuK : maxK);
    const rerankFactor = o.rerankFactor === undefined ? undefined : integerIn(o.rerankFactor, 'options.rerankFactor', 1, maxRerankFactor);
    this.checkPrecision(device, o, rerankFactor);
    // The attached index's filter goes in as it is; another index's is resolved to its ids, which
    // waits: keep the users as they are now.
    if (this.attachedTo && o.eligible instanceof Uint8Array) {
      throw new InvalidArgumentError('Expected eligible ids or a filter compiled by the attached index for options.eligible: an attached scorer has no insertion order for a mask to follow');
    }
    const ownFilter = o.eligible instanceof CompiledFilter && o.eligible.owner === this.attachedTo ? o.eligible : undefined;
    if (o.eligible instanceof CompiledFilter && !ownFilter) users = users.slice();
    const request = {
      threads: integerIn(o.threads ?? 0, 'options.threads', 0, 4096),
      fused: oneOf(o.mode ?? 'fused', 'options.mode', ['fused', 'unfused']) === 'fused',
      ...(rerankFactor === undefined ? {} : { rerankFactor }),
      device: device === 'gpu' ? 1 : 0,
      gpuDevice: integerIn(o.gpuDevice ?? defaults.gpuDevice, 'options.gpuDevice', 0, 1024),
      ...(ownFilter
        ? { filter: ownFilter.native, eligibleMask: undefined, eligibleIds: undefined }
        : eligibility(o.eligible instanceof CompiledFilter ? await o.eligible.owner.eligibleIds(o.eligible) : o.eligible, handle.size())),
      ...candidateList(o.candidates, nu),
    };
    const inputs: [Float32Array, Uint8Array | null, BigInt64Array | null, BigInt64Array | null] =
      [users, request.eligibleMask ?? null, request.eligibleIds ?? null, request.candidates ?? null];
    const raw = await withCancel(o.signal, 'options.signal', (cancel) =>
      withCallerStack(
        withPrivateInputs(inputs, ['users', 'options.eligible', 'options.eligible', 'options.candidates'], (u, mask, ids, c) =>
          handle.search(u, weights, k, {
            ...request,
            eligibleMask: mask ?? undefined,
            eligibleIds: ids ?? undefined,
            candidates: c ?? undefined,
            ...(cancel ? { cancel } : {}),
          }))),
    );
    return new SearchResults(k, 'ip', raw);
  }

  /**
   * Blended scores (nu x n, row-major) of the listed ads for every user, or of every ad in
   * insertion order when `ids` is omitted: the scorer's exact outputs, for checks and analysis.
   */
  async score(users: Float32Array, ids?: IdsInput, options?: BlendOptions & { threads?: number }): Promise<Float32Array> {
    const handle = this.open();
    this.checkUsers(users);
    const o = knownOptions(options, 'score options', blendOptionNames) as BlendOptions & { threads?: number };
    const weights = this.headWeights(o);
    const threads = integerIn(o.threads ?? 0, 'options.threads', 0, 4096);
    return withCallerStack(
      withPrivateInputs([users, ids === undefined ? null : toIdArray(ids)], ['users', 'ids'], (u, i) => handle.score(u, weights, i, threads)));
  }

  /** Frees the ads and weights. Calls already running finish; later calls throw ClosedError. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private open(): NativeScorer {
    if (!this.handle) throw new ClosedError('This LearnedScorer is closed: load the model again to add or search');
    return this.handle;
  }

  /** A request the scorer's precision cannot serve is an error, never a quiet fp32 scan. */
  private checkPrecision(device: string, o: ScorerSearchOptions, rerankFactor: number | undefined): void {
    if (rerankFactor !== undefined && (this.precision !== 'bf16' || this.kind === 'dot')) {
      throw new InvalidArgumentError(
        `Expected no options.rerankFactor: it sizes the re-scored window of a bf16 'mlp' or 'mol' scorer, and this scorer is ${this.precision} '${this.kind}'`,
      );
    }
    if (this.precision === 'fp32' || o.candidates !== undefined) return;
    if (device === 'gpu') {
      throw new InvalidArgumentError(`Expected device 'cpu' for the full scan of a ${this.precision} scorer: the GPU scan is fp32 only (load the scorer with precision 'fp32')`);
    }
    if (o.mode === 'unfused') {
      throw new InvalidArgumentError(`Expected the fused mode for a ${this.precision} scorer: the unfused mode is the fp32 comparison path`);
    }
  }

  private checkUsers(users: Float32Array): number {
    return wholeRows(users, this.userDim, 'users', 'userDim').length / this.userDim;
  }
}

function eligibility(eligible: unknown, size: number): { eligibleMask?: Uint8Array; eligibleIds?: BigInt64Array } {
  if (eligible === undefined) return {};
  if (eligible instanceof Uint8Array) {
    if (eligible.length !== size) {
      throw new DimensionMismatchError(`Expected an eligibility mask of one byte per ad (${size}) but received ${eligible.length}`);
    }
    return { eligibleMask: eligible };
  }
  return { eligibleIds: toIdArray(eligible, 'options.eligible') };
}

function candidateList(candidates: unknown, nu: number): { candidates?: BigInt64Array; candidatesPerUser?: number } {
  if (candidates === undefined) return {};
  const ids = candidates instanceof SearchResults ? candidates.ids : candidates;
  if (!(ids instanceof BigInt64Array)) throw invalid('a BigInt64Array of users x K ids or SearchResults', 'options.candidates', candidates);
  if (ids.length === 0 || ids.length % nu !== 0) {
    throw new DimensionMismatchError(`Expected users (${nu}) x K candidate ids but received ${ids.length}`);
  }
  return { candidates: ids, candidatesPerUser: ids.length / nu };
}
