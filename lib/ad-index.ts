/**
 * The ads corpus index: every kind (exact, IVF-Flat, IVF-PQ, IVF-SQ8, HNSW, a FAISS factory
 * string) behind one interface, with eligibility attributes, upserts and removes without a
 * rebuild, filters compiled once and reused, compaction, and atomic persistence.
 */
import { withCallerStack, withStackHere } from './caller-stack';
import { defaults, maxDim, maxGpuK, maxK } from './defaults';
import { withCancel } from './cancel';
import { ClosedError, InvalidArgumentError } from './errors';
import { toIdArray, type IdsInput } from './ids';
import { metricCode, metrics, type Metric } from './metric';
import { native, type NativeAdIndex, type NativeFilter, type NativeFilterSpec } from './native';
import { SearchResults } from './results';
import { float32Array, integerIn, invalid, knownOptions, oneOf, rowsPerId, wholeRows } from './validate';
import { resolveDevice, type DeviceChoice } from './device';
import { withPrivateInputs } from './private-input';

export type IndexKind = 'flat' | 'ivf-flat' | 'ivf-pq' | 'ivf-sq8' | 'hnsw' | 'faiss';
const kinds: readonly IndexKind[] = ['flat', 'ivf-flat', 'ivf-pq', 'ivf-sq8', 'hnsw', 'faiss'];
/** The copy of the corpus the flat kind's exact scan reads first; the answer stays the fp32 one. */
export type ScanPrecision = 'fp32' | 'bf16' | 'int8';
const precisions: readonly ScanPrecision[] = ['fp32', 'bf16', 'int8'];

/**
 * @internal How a preset (FlatIndex, FaissIndex) builds its AdIndex: its name in messages, the
 * options it takes, defaults of its own, and its kind.
 */
export interface IndexPreset {
  name: string;
  optionNames: readonly string[];
  defaults?: Partial<AdIndexOptions>;
  kind: IndexKind;
}

export type BudgetState = 'available' | 'limited' | 'exhausted';
const budgetStates: readonly BudgetState[] = ['available', 'limited', 'exhausted'];

export interface AdIndexOptions {
  /** Embedding dimension. */
  dim: number;
  /** 'ip' (default), 'l2' or 'cosine'. */
  metric?: Metric;
  /** Index kind (default 'flat'); see the README's "Choosing an index". */
  kind?: IndexKind;
  /** Threads per operation; 0 (default) uses every core. */
  threads?: number;
  /** IVF kinds: number of coarse clusters (default 1024; about 4 x sqrt(ads) is a good start). */
  nlist?: number;
  /** IVF-PQ: bytes per ad code, dividing dim (default 16). */
  pqBytes?: number;
  /** IVF-PQ: learn a rotation (OPQ) before quantising (default false). */
  opq?: boolean;
  /** HNSW: links per node (default 32). */
  hnswM?: number;
  /** HNSW: build-time beam width (default 80). */
  efConstruction?: number;
  /** Kind 'faiss': a FAISS index_factory string of the forms the README lists (those a load can verify). */
  factory?: string;
  /** Keep full-precision vectors beside approximate codes (default true): needed to re-rank,
   * to answer very selective filters exactly and to compact IVF-PQ without loss. */
  storeVectors?: boolean;
  /** Default search parameters. */
  nprobe?: number;
  efSearch?: number;
  rerank?: number;
  /**
   * Kind 'flat': 'bf16' or 'int8' keep a reduced copy of the vectors (2 or 1 byte per value,
   * beside the fp32 ones) that the scan reads first; the candidates a proven error bound cannot
   * rule out are re-ranked in fp32, so answers equal the fp32 scan's (ties aside). Default 'fp32'.
   */
  precision?: ScanPrecision;
}

export interface AdAttributes {
  active?: boolean;
  budget?: BudgetState;
  advertiser?: number;
  campaign?: number;
  category?: number;
  geo?: number;
}

/** Which ads a request may see. Fields are ANDed; a list matches any of its values. */
export interface EligibilityFilter {
  ids?: IdsInput;
  active?: boolean;
  budget?: readonly BudgetState[];
  advertisers?: readonly number[];
  excludeAdvertisers?: readonly number[];
  campaigns?: readonly number[];
  categories?: readonly number[];
  geos?: readonly number[];
}

export interface AdSearchOptions {
  /** Only these ads: a filter from index.filter() (fastest when reused) or a filter description. */
  filter?: CompiledFilter | EligibilityFilter;
  /** IVF kinds: clusters visited per query. */
  nprobe?: number;
  /** HNSW: beam width of the search. */
  efSearch?: number;
  /** IVF-PQ with stored vectors: re-rank k x rerank candidates exactly (0 or 1: off). */
  rerank?: number;
  threads?: number;
  /** 'cpu' (default), 'gpu' (kind 'flat' only) or 'auto'. */
  device?: DeviceChoice;
  gpuDevice?: number;
  /**
   * Stops the search when it aborts: the native scan polls a flag between chunks of ads (and the
   * HNSW search between queries) and the promise rejects with AbortedError (`ERR_ABORTED`).
   */
  signal?: AbortSignal;
}

export interface IndexStats {
  kind: IndexKind;
  live: number;
  deleted: number;
  slots: number;
  trained: boolean;
  bytes: number;
  bytesPerAd: number;
  vectorBytes: number;
  indexBytes: number;
  catalogBytes: number;
  /** Increases with every write. */
  generation: number;
  /** Compiled filters this index keeps current (those not yet garbage-collected). */
  filters: number;
  /** Filters compiled over the whole corpus: index.filter() and one-off filter descriptions. */
  filterCompiles: number;
  /** Filter bits re-tested by writes, for the slots each write touched (summed over filters). */
  filterSlotUpdates: number;
  /** Queries answered by a bf16 or int8 scan, and the fp32 re-rankings they needed (k each at least). */
  reducedQueries: number;
  reducedReranked: number;
  options: Required<Omit<AdIndexOptions, 'factory'>> & { factory?: string };
}

const optionNames = [
  'dim', 'metric', 'kind', 'threads', 'nlist', 'pqBytes', 'opq', 'hnswM', 'efConstruction', 'factory',
  'storeVectors', 'nprobe', 'efSearch', 'rerank', 'precision',
] as const;
const searchOptionNames = ['filter', 'nprobe', 'efSearch', 'rerank', 'threads', 'device', 'gpuDevice', 'signal'] as const;
const filterNames = ['ids', 'active', 'budget', 'advertisers', 'excludeAdvertisers', 'campaigns', 'categories', 'geos'] as const;
const attributeNames = ['active', 'budget', 'advertiser', 'campaign', 'category', 'geo'] as const;
const maxUint32 = 0xffffffff;

/**
 * A filter compiled to a bitmap over the index's ads. It never goes stale: every write (upsert,
 * remove, setAttributes, compact) updates its bits for the ads it touches, so a filter compiled
 * once serves every later search. The index stops maintaining it once it is garbage-collected.
 */
export class CompiledFilter {
  readonly spec: EligibilityFilter;
  /** @internal */ readonly native: NativeFilter;
  /** @internal */ readonly owner: AdIndex;

  /** @internal */
  constructor(owner: AdIndex, spec: EligibilityFilter, compiled: NativeFilter) {
    this.owner = owner;
    this.spec = spec;
    this.native = compiled;
  }

  /** Eligible live ads now. */
  get count(): number {
    return this.native.count();
  }
}

export class AdIndex {
  readonly dim: number;
  readonly metric: Metric;
  readonly kind: IndexKind;
  readonly threads: number;
  private handle: NativeAdIndex | undefined;
  private readonly settings: IndexStats['options'];

  /**
   * @example
   * const index = new AdIndex({ dim: 96, kind: 'hnsw', metric: 'cosine' });
   * await index.upsert(ids, embeddings, attributes);
   * const results = await index.search(userEmbedding, 500, { filter: { active: true, geos: [3] } });
   */
  constructor(options: AdIndexOptions);
  /** @internal */
  constructor(options: AdIndexOptions, loaded: NativeAdIndex | undefined, preset?: IndexPreset);
  constructor(options: AdIndexOptions, loaded?: NativeAdIndex, preset?: IndexPreset) {
    const label = `${preset?.name ?? 'AdIndex'} options`;
    const given = knownOptions(options, label, preset?.optionNames ?? optionNames);
    if (options === undefined) throw new InvalidArgumentError(`Expected an options object with at least { dim } for ${label}`);
    const o = preset ? { ...preset.defaults, ...given, kind: preset.kind } : given;
    const kind = oneOf(o.kind ?? 'flat', `${label}.kind`, kinds);
    const dim = integerIn(o.dim, `${label}.dim`, 1, maxDim);
    const settings: IndexStats['options'] = {
      dim,
      kind,
      metric: oneOf(o.metric ?? defaults.metric, `${label}.metric`, metrics),
      threads: integerIn(o.threads ?? defaults.threads, `${label}.threads`, 0, 4096),
      nlist: integerIn(o.nlist ?? 1024, `${label}.nlist`, 1, 1 << 24),
      pqBytes: integerIn(o.pqBytes ?? Math.min(16, dim), `${label}.pqBytes`, 1, dim),
      opq: booleanOption(o.opq, false, `${label}.opq`),
      hnswM: integerIn(o.hnswM ?? 32, `${label}.hnswM`, 2, 1024),
      efConstruction: integerIn(o.efConstruction ?? 80, `${label}.efConstruction`, 1, 65536),
      storeVectors: booleanOption(o.storeVectors, true, `${label}.storeVectors`),
      nprobe: integerIn(o.nprobe ?? 16, `${label}.nprobe`, 1, 1 << 24),
      efSearch: integerIn(o.efSearch ?? 64, `${label}.efSearch`, 1, 65536),
      rerank: integerIn(o.rerank ?? 0, `${label}.rerank`, 0, 1024),
      precision: oneOf(o.precision ?? 'fp32', `${label}.precision`, precisions),
    };
    if (kind !== 'flat' && settings.precision !== 'fp32') {
      throw new InvalidArgumentError(`${label}.precision '${settings.precision}' is for kind 'flat' (its exact scan); kind '${kind}' has its own codes`);
    }
    if (kind === 'faiss') {
      if (typeof o.factory !== 'string' || o.factory.length === 0) throw invalid("a FAISS factory string such as 'IVF1024,PQ16'", `${label}.factory`, o.factory);
      settings.factory = o.factory;
    } else if (o.factory !== undefined) {
      throw new InvalidArgumentError(`${label}.factory is only for kind 'faiss' (this index is '${kind}')`);
    }
    if (kind === 'ivf-pq' && dim % settings.pqBytes !== 0) {
      throw invalid(`a divisor of dim ${dim}`, `${label}.pqBytes`, settings.pqBytes);
    }
    const handle = loaded ?? new (native().NativeAdIndex)({ ...settings, kind: kinds.indexOf(kind), metric: metricCode(settings.metric), precision: precisions.indexOf(settings.precision) }, settings.threads);
    this.dim = dim;
    this.metric = settings.metric;
    this.kind = kind;
    this.threads = settings.threads;
    this.settings = settings;
    this.handle = handle;
  }

  /** Loads an index saved with save(). A damaged file rejects with CorruptFileError. */
  static async load(path: string, options: { threads?: number } = {}): Promise<AdIndex> {
    if (typeof path !== 'string' || path.length === 0) throw invalid('a file path', 'path', path);
    const o = knownOptions(options, 'load options', ['threads']);
    const threads = integerIn(o.threads ?? 0, 'load options.threads', 0, 4096);
    const handle = await withCallerStack(native().NativeAdIndex.load(path, threads));
    const c = handle.config();
    const kind = kinds[c.kind]!;
    const settings: IndexStats['options'] = { ...c, kind, metric: metrics[c.metric]!, precision: precisions[c.precision ?? 0]!, threads };
    if (kind !== 'faiss') delete settings.factory;
    return new AdIndex(settings, handle);
  }

  /** Live ads. Never waits on a running write. */
  get size(): number {
    return this.open().size();
  }

  /** Increases with every write. */
  get generation(): number {
    return this.open().generation();
  }

  get isTrained(): boolean {
    return this.open().isTrained();
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  /** Learns centroids and codebooks (IVF kinds) from a sample of n x dim embeddings. */
  async train(sample: Float32Array): Promise<void> {
    const handle = this.open();
    float32Array(sample, 'sample');
    await withCallerStack(withPrivateInputs([sample], ['sample'], (s) => handle.train(s)));
  }

  /**
   * Inserts new ads and replaces existing ones (embedding and attributes), all or nothing: a
   * non-finite value or an id twice in the batch rejects and writes none. `vectors` is
   * ids.length x dim, row-major. Attributes are one object per ad, or a Uint32Array of
   * ids.length x 6 values in the order active (0/1), budget (0 available, 1 limited, 2 exhausted),
   * advertiser, campaign, category, geo (no objects for large loads). They default to an active ad
   * with budget available and every other field 0. Inputs are copied before any worker reads them
   * (lib/private-input.ts): up to 1 MiB at once, larger ones in slices between event-loop turns,
   * during which their buffer must stay in place.
   */
  async upsert(ids: IdsInput, vectors: Float32Array, attributes?: readonly AdAttributes[] | Uint32Array): Promise<void> {
    return this.write(ids, vectors, attributes, false);
  }

  /**
   * Inserts new ads only: like upsert(), but an id already present rejects the whole batch with
   * DuplicateIdError and writes none (the meaning add() had on FlatIndex and FaissIndex in 0.1).
   */
  async add(ids: IdsInput, vectors: Float32Array, attributes?: readonly AdAttributes[] | Uint32Array): Promise<void> {
    return this.write(ids, vectors, attributes, true);
  }

  private async write(ids: IdsInput, vectors: Float32Array, attributes: readonly AdAttributes[] | Uint32Array | undefined,
    insertOnly: boolean): Promise<void> {
    const handle = this.open();
    const idArray = toIdArray(ids);
    rowsPerId(vectors, idArray.length, this.dim);
    const packed = attributes === undefined ? null : packAttributes(attributes, idArray.length);
    if (idArray.length === 0) return;
    await withCallerStack(withPrivateInputs([idArray, vectors], ['ids', 'vectors'], (i, v) => handle.upsert(i, v, packed, insertOnly)));
  }

  /**
   * Changes the attributes of ads already present (a paused ad, a spent budget) without touching
   * their embeddings; returns how many were present. Compiled filters are updated with the write.
   */
  async setAttributes(ids: IdsInput, attributes: readonly AdAttributes[] | Uint32Array): Promise<number> {
    const handle = this.open();
    const idArray = toIdArray(ids);
    // The addon reads the attributes into its own structs as the call is made.
    return withCallerStack(withPrivateInputs([idArray], ['ids'], (i) => handle.setAttributes(i, packAttributes(attributes, i.length))));
  }

  /** Removes ads by id; returns how many were present. A removed ad never comes back. */
  async remove(ids: IdsInput): Promise<number> {
    const handle = this.open();
    return withCallerStack(withPrivateInputs([toIdArray(ids)], ['ids'], (i) => handle.remove(i)));
  }

  /** Compiles an eligibility filter once, for reuse across the queries of a request. */
  async filter(spec: EligibilityFilter): Promise<CompiledFilter> {
    const handle = this.open();
    const nativeSpec = toNativeFilter(spec);
    const compiled = await withCallerStack(handle.compileFilter(nativeSpec));
    return new CompiledFilter(this, spec, compiled);
  }

  /**
   * The ids of the live ads a filter admits now: how a filter reaches components that hold the
   * same ads under their own numbering (a LearnedScorer accepts a CompiledFilter directly).
   */
  async eligibleIds(filter: CompiledFilter | EligibilityFilter): Promise<BigInt64Array> {
    const compiled = filter instanceof CompiledFilter ? filter : await this.filter(filter);
    if (compiled.owner !== this) throw new InvalidArgumentError('Expected a filter compiled by this index (index.filter())');
    return withCallerStack(this.open().eligibleIds(compiled.native));
  }

  /**
   * Top-k among the eligible ads for each query (nq x dim). Very selective filters are
   * answered exactly; others widen the approximate search so recall holds.
   */
  async search(queries: Float32Array, k: number, options?: AdSearchOptions): Promise<SearchResults> {
    const handle = this.open();
    wholeRows(queries, this.dim, 'queries');
    const o = knownOptions(options, 'search options', searchOptionNames);
    const onGpu = resolveDevice(oneOf(o.device ?? defaults.device, 'options.device', ['cpu', 'gpu', 'auto'])) === 'gpu' && this.kind === 'flat';
    integerIn(k, 'k', 1, onGpu ? maxGpuK : maxK);
    const nprobe = integerIn(o.nprobe ?? 0, 'options.nprobe', 0, 1 << 24);
    const efSearch = integerIn(o.efSearch ?? 0, 'options.efSearch', 0, 65536);
    const rerank = integerIn(o.rerank ?? -1, 'options.rerank', -1, 1024);
    const threads = integerIn(o.threads ?? 0, 'options.threads', 0, 4096);
    const gpuDevice = integerIn(o.gpuDevice ?? defaults.gpuDevice, 'options.gpuDevice', 0, 1024);
    if (o.device === 'gpu' && this.kind !== 'flat') {
      throw new InvalidArgumentError(`Expected device 'cpu' or 'auto' for a '${this.kind}' index: only kind 'flat' searches on the GPU`);
    }
    let filter: CompiledFilter | undefined;
    let description: NativeFilterSpec | undefined;
    if (o.filter instanceof CompiledFilter) {
      if (o.filter.owner !== this) throw new InvalidArgumentError('Expected a filter compiled by this index (index.filter())');
      filter = o.filter;
    } else if (o.filter !== undefined) {
      // A one-off description: compiled inside the search, under its lock, and not kept.
      description = toNativeFilter(o.filter);
    }
    try {
      const raw = await withCancel(o.signal, 'options.signal', (cancel) =>
        withPrivateInputs([queries], ['queries'], (q) =>
          handle.search(q, k, nprobe, efSearch, rerank, threads, onGpu ? 1 : 0, gpuDevice, cancel ?? null, filter?.native ?? null, description),
        ),
      );
      return new SearchResults(k, this.metric, raw);
    } catch (error) {
      // The hot path awaits the native call itself (one async layer fewer than withCallerStack).
      throw withStackHere(error);
    }
  }

  /** Drops removed ads for good and renumbers the rest (HNSW: rebuilds its graph). */
  async compact(): Promise<void> {
    await withCallerStack(this.open().compact());
  }

  async stats(): Promise<IndexStats> {
    const s = await this.open().stats();
    return { kind: this.kind, ...s, bytesPerAd: s.live > 0 ? s.bytes / s.live : 0, options: { ...this.settings } };
  }

  /**
   * Saves index, ids and attributes atomically: a temporary file beside `path`, fsync, rename.
   * A failure leaves any previous file at `path` as it was.
   */
  async save(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalid('a file path', 'path', path);
    await withCallerStack(this.open().save(path));
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  /** @internal The native handle (ClosedError once closed): for components attached to this index. */
  open(): NativeAdIndex {
    if (!this.handle) throw new ClosedError(`This ${this.constructor.name} is closed: load or create a new one`);
    return this.handle;
  }
}

function booleanOption(value: unknown, fallback: boolean, name: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid('a boolean', name, value);
  return value;
}

function uint32List(values: unknown, name: string): Uint32Array | undefined {
  if (values === undefined) return undefined;
  if (!Array.isArray(values) && !(values instanceof Uint32Array)) throw invalid('an array of integers', name, values);
  const list = values as ArrayLike<unknown>;
  const out = new Uint32Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = integerIn(list[i], `${name}[${i}]`, 0, maxUint32);
  return out;
}

function toNativeFilter(spec: unknown): NativeFilterSpec {
  const o = knownOptions(spec, 'filter', filterNames);
  const out: NativeFilterSpec = {};
  if (o.active !== undefined) out.active = booleanOption(o.active, true, 'filter.active');
  if (o.budget !== undefined) {
    if (!Array.isArray(o.budget)) throw invalid(`an array of ${budgetStates.map((b) => `'${b}'`).join(', ')}`, 'filter.budget', o.budget);
    out.budgets = Uint32Array.from(o.budget, (b, i) => budgetStates.indexOf(oneOf(b, `filter.budget[${i}]`, budgetStates)));
  }
  const lists = { advertisers: 'advertisers', excludeAdvertisers: 'excludedAdvertisers', campaigns: 'campaigns', categories: 'categories', geos: 'geos' } as const;
  for (const [name, nativeName] of Object.entries(lists)) {
    const list = uint32List(o[name], `filter.${name}`);
    if (list) out[nativeName] = list;
  }
  if (o.ids !== undefined) out.ids = toIdArray(o.ids, 'filter.ids');
  return out;
}

/** @internal Attributes as the n x 6 Uint32Array the addon reads (lib/cluster writes them to its log). */
export function packAttributes(attributes: readonly AdAttributes[] | Uint32Array, n: number): Uint32Array {
  if (attributes instanceof Uint32Array) {
    if (attributes.length !== n * 6) throw invalid(`a Uint32Array of ${n} x 6 attribute values`, 'attributes', attributes);
    for (let i = 0; i < n; i++) {
      if (attributes[i * 6]! > 1 || attributes[i * 6 + 1]! > 2) {
        throw invalid('active 0 or 1 and budget 0, 1 or 2', `attributes row ${i}`, attributes.subarray(i * 6, i * 6 + 6));
      }
    }
    return attributes;
  }
  if (!Array.isArray(attributes) || attributes.length !== n) {
    throw invalid(`an array of ${n} attribute objects (one per id)`, 'attributes', attributes);
  }
  const out = new Uint32Array(n * 6);
  for (let i = 0; i < n; i++) {
    const a = knownOptions(attributes[i], `attributes[${i}]`, attributeNames);
    out[i * 6] = booleanOption(a.active, true, `attributes[${i}].active`) ? 1 : 0;
    out[i * 6 + 1] = budgetStates.indexOf(oneOf(a.budget ?? 'available', `attributes[${i}].budget`, budgetStates));
    out[i * 6 + 2] = integerIn(a.advertiser ?? 0, `attributes[${i}].advertiser`, 0, maxUint32);
    out[i * 6 + 3] = integerIn(a.campaign ?? 0, `attributes[${i}].campaign`, 0, maxUint32);
    out[i * 6 + 4] = integerIn(a.category ?? 0, `attributes[${i}].category`, 0, maxUint32);
    out[i * 6 + 5] = integerIn(a.geo ?? 0, `attributes[${i}].geo`, 0, maxUint32);
  }
  return out;
}
