/**
 * The standard assembly: the ads corpus (catalog, attribute store, behavioural and content
 * indexes), the four built-in generators (two-tower, learned scorer, content for cold start,
 * popularity), an allocator and the pipeline, with learned state saved to and restored from one file.
 */
import { AdCorpus, type IndexSettings } from '../corpus/ad-corpus';
import type { ScanPrecision } from '../ad-index';
import type { Metric } from '../metric';
import { DimensionMismatchError, NonFiniteError } from '../errors';
import { toIdArray } from '../ids';
import { integerIn, invalid, knownOptions, numberIn } from '../validate';
import { batchingOptions, type BatchingOptions } from '../request-batcher';
import type { AdStore, AdInput } from '../corpus/ad-store';
import type { QuotaAllocator } from './allocators/allocator';
import { StaticAllocator } from './allocators/static';
import { ThompsonAllocator, type ThompsonOptions } from './allocators/thompson';
import { EmbeddingCorpus } from '../corpus/embedding-corpus';
import type { SearchIndex } from '../corpus/search-index';
import type { Embedder } from './embedders/embedder';
import { HashedNgramEmbedder } from './embedders/hashed';
import { ContentGenerator } from './generators/content';
import { ConfigError } from './errors';
import { PopularityGenerator, type PopularityOptions } from './generators/popularity';
import { DotProductScorer, ScorerGenerator, type Scorer } from './generators/scorer';
import { SequenceGenerator, type SequenceGeneratorOptions } from './generators/sequence';
import { TwoTowerGenerator } from './generators/two-tower';
import { Pipeline, type FeedbackInput } from './pipeline';
import { Scenarios, type ScenarioConfig } from './scenarios';
import { readStateFile, writeStateFile } from './state-file';
import type { CandidateGenerator, RetrieveRequest, RetrieveResult, UserFeatures } from './types';

export interface EngineOptions {
  /** Dimension of the ads' behavioural embeddings and of user embeddings. */
  dim: number;
  metric?: Metric;
  scenarios?: ScenarioConfig[];
  /** 'learned' (Thompson sampling, default), 'static', or an allocator of your own. */
  allocator?: 'learned' | 'static' | QuotaAllocator;
  allocatorOptions?: ThompsonOptions;
  /** The behavioural index's kind and settings (default: exact, kind 'flat'). */
  index?: IndexSettings;
  /** The content index's scan precision ('fp32' default, 'bf16' or 'int8': the same answers, faster; AdIndexOptions.precision). */
  contentPrecision?: ScanPrecision;
  /**
   * Where the corpus keeps its catalog and snapshots (CandidateEngine.open only): every
   * acknowledged write survives a restart. Absent: the corpus lives in memory.
   */
  dataDir?: string;
  /** 'power' (default) or 'process': see AdCorpusOptions.durability. */
  durability?: 'power' | 'process';
  /** Hears what opening the corpus did (snapshot loaded, changes replayed). */
  log?: (line: string) => void;
  /** Use this opened corpus instead of building one (engines sharing it share its ads). */
  corpus?: AdCorpus;
  /**
   * Where the behavioural generators search, for a corpus that keeps no behavioural index
   * (AdCorpusOptions.embeddingsIn): a cluster's RemoteIndex (lib/cluster, ClusterEngine).
   */
  embeddings?: SearchIndex;
  /**
   * Makes `request.readAfter` wait until the write of that sequence is searchable, within
   * `timeoutMs` (a cluster router's catalog and shards). Without it, readAfter is checked against
   * the corpus, which searches every write it has acknowledged.
   */
  readAfter?: (sequence: number, timeoutMs: number) => Promise<void>;
  /** Text embeddings for cold-start ads (default: hashed n-grams, 256 dimensions). */
  embedder?: Embedder;
  /** 'full' (default: the scorer scans the corpus) or 'two-stage' (ANN first stage, exact re-rank). */
  scorerMode?: 'full' | 'two-stage';
  /**
   * A learned scorer (default: dot product over the behavioural embeddings). A
   * LearnedScorerAdapter is attached to the behavioural corpus: its model (holding no ads of its
   * own, itemDim = dim) reads the corpus's ads and filters (see `ready`).
   */
  scorer?: Scorer;
  popularity?: PopularityOptions;
  /**
   * A trained sequence model (docs/SEQUENCES.md): adds the 'sequence' generator over the
   * behavioural corpus, whose ads then carry the model's item embeddings (dim = encoder.dim).
   * The default scenarios use it when it is given.
   */
  sequence?: Omit<SequenceGeneratorOptions, 'corpus' | 'name'>;
  /** More generators, to name in scenarios. */
  generators?: CandidateGenerator[];
  /** Fills in features for requests that carry only a user id. */
  userFeatures?: (userId: string) => UserFeatures | undefined;
  /** Where learned state is saved and restored from. */
  stateFile?: string;
  ledgerSize?: number;
  /** Threads per search of the indexes the engine builds (default 0: every core; 1 suits a busy service). */
  threads?: number;
  /** Compiled filters kept per corpus the engine builds (default 64; EmbeddingCorpusOptions.filterCacheSize). */
  filterCacheSize?: number;
  /** The built content generator's query-embedding cache and embedder budget (ContentGeneratorOptions). */
  embedderCacheSize?: number;
  embedderCallsPerSecond?: number;
  /**
   * Cross-request batching of the corpus searches (two-tower, dot-product scorer, content,
   * sequence): concurrent searches with the same filter share one index call (default: on, at
   * most 64 a call and 5 ms of added wait; `{ enabled: false }`: one call per search). A
   * LearnedScorerAdapter takes its own `batching` option.
   */
  batching?: BatchingOptions;
}

/** An ad to add or update: its attributes, and an embedding and/or a text. */
export interface AdUpsert extends AdInput {
  /** Behavioural embedding (dim values); an ad with one leaves the cold-start corpus. */
  embedding?: Float32Array;
}

/** How long request.readAfter waits for its write when the request gives no deadline. */
const readAfterWaitMs = 1000;

export const defaultScenarios: ScenarioConfig[] = [
  { name: 'home', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 200, deadlineMs: 50 },
  { name: 'search', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 200, deadlineMs: 30 },
  { name: 'related', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 100, deadlineMs: 30 },
];

const optionNames = [
  'dim', 'metric', 'scenarios', 'allocator', 'allocatorOptions', 'index', 'contentPrecision', 'dataDir', 'durability', 'log', 'corpus', 'embeddings', 'readAfter', 'embedder',
  'scorerMode', 'scorer', 'popularity', 'sequence', 'generators', 'userFeatures', 'stateFile', 'ledgerSize', 'threads',
  'filterCacheSize', 'embedderCacheSize', 'embedderCallsPerSecond', 'batching',
];

export class CandidateEngine {
  readonly dim: number;
  /** The ads: every write goes through it (upsertAds, removeAds, spend, setCampaignBudget). */
  readonly corpus: AdCorpus;
  readonly store: AdStore;
  /** The search side of the behavioural index (two-tower and scorer generators). */
  readonly embeddings: EmbeddingCorpus;
  readonly content: ContentGenerator;
  readonly popularity: PopularityGenerator;
  readonly allocator: QuotaAllocator;
  readonly pipeline: Pipeline;
  readonly stateFile: string | undefined;
  /**
   * Resolves once the scorer is attached to the corpus (at once for the default scorer). open()
   * awaits it; an engine built with `new` serves learned-scorer requests after it (they wait for it, and fail with its error).
   */
  readonly ready: Promise<void>;
  private readonly userFeatures: ((userId: string) => UserFeatures | undefined) | undefined;
  private readonly ownsCorpus: boolean;
  private readonly awaitSequence: ((sequence: number, timeoutMs: number) => Promise<void>) | undefined;

  /** An engine whose corpus lives in `options.dataDir` (loaded from its snapshot and catalog), or in memory without one. */
  static async open(options: EngineOptions): Promise<CandidateEngine> {
    const onDisk = !options.corpus && options.dataDir !== undefined;
    const corpus = onDisk
      ? await AdCorpus.open({ ...corpusOptions(options), dataDir: options.dataDir, durability: options.durability, log: options.log })
      : options.corpus;
    let engine: CandidateEngine | undefined;
    try {
      engine = new CandidateEngine({ ...options, corpus }, onDisk);
      await engine.ready;
      return engine;
    } catch (error) {
      if (engine) await engine.close();
      else if (onDisk) await corpus!.close();
      throw error;
    }
  }

  /** An engine over `options.corpus`, or over a new corpus in memory (CandidateEngine.open takes a dataDir). */
  constructor(options: EngineOptions, ownsCorpus = false) {
    const o = knownOptions(options, 'CandidateEngine options', optionNames);
    this.dim = integerIn(o.dim, 'CandidateEngine options.dim', 1, 65536);
    const scorerMode = options.scorerMode ?? 'full';
    if (scorerMode !== 'full' && scorerMode !== 'two-stage') throw invalid("'full' or 'two-stage'", 'CandidateEngine options.scorerMode', scorerMode);
    if (options.dataDir !== undefined && !options.corpus) {
      throw new ConfigError('Expected CandidateEngine.open() for options.dataDir (opening a corpus on disk is asynchronous); the constructor builds a corpus in memory');
    }
    const embedder = options.embedder ?? new HashedNgramEmbedder({ dim: 256 });
    this.corpus = options.corpus ?? AdCorpus.inMemory(corpusOptions(options));
    this.ownsCorpus = ownsCorpus || !options.corpus;
    if (this.corpus.dim !== this.dim) throw new DimensionMismatchError(`Expected a corpus of dim ${this.dim} for CandidateEngine options.corpus but received dim ${this.corpus.dim}`);
    if (!this.corpus.content || this.corpus.content.dim !== embedder.dim) {
      throw new DimensionMismatchError(`Expected a corpus whose content index has the embedder's dim ${embedder.dim} but it has ${this.corpus.content?.dim ?? 'no content index'}`);
    }
    this.store = this.corpus.store;
    const batching = batchingOptions(options.batching, 'CandidateEngine options.batching');
    if (!options.embeddings && !this.corpus.hasLocalEmbeddings) {
      throw new ConfigError('Expected options.embeddings (where to search the behavioural embeddings) for a corpus that keeps none: a RemoteIndex over the cluster');
    }
    if (options.embeddings && options.embeddings.dim !== this.dim) throw new DimensionMismatchError(`Expected options.embeddings of dim ${this.dim} but received dim ${options.embeddings.dim}`);
    const index = options.embeddings ?? this.corpus.behavioural;
    const behavioural = new EmbeddingCorpus(index, this.store, { filterCacheSize: options.filterCacheSize, batching });
    this.embeddings = behavioural;
    this.content = new ContentGenerator({
      embedder,
      corpus: new EmbeddingCorpus(this.corpus.content, this.store, { filterCacheSize: options.filterCacheSize, batching }),
      cacheSize: options.embedderCacheSize,
      callsPerSecond: options.embedderCallsPerSecond,
    });
    this.popularity = new PopularityGenerator(options.popularity);
    const sequence = options.sequence ? new SequenceGenerator({ ...options.sequence, corpus: behavioural }) : undefined;
    const scenarios = new Scenarios(options.scenarios ?? (sequence ? withSequence(defaultScenarios) : defaultScenarios));
    this.allocator = makeAllocator(options, scenarios);
    const scorer: Scorer = options.scorer ?? new DotProductScorer(behavioural);
    this.ready = Promise.all([scorer.attach?.(behavioural), sequence?.ready]).then(() => undefined);
    this.ready.catch(() => undefined);  // reported to whoever awaits it (open() does), not an unhandled rejection
    const generators: CandidateGenerator[] = [
      new TwoTowerGenerator({ corpus: behavioural }),
      new ScorerGenerator({ scorer, mode: scorerMode, firstStage: behavioural }),
      this.content,
      this.popularity,
      ...(sequence ? [sequence] : []),
      ...(options.generators ?? []),
    ];
    this.pipeline = new Pipeline({ generators, scenarios, allocator: this.allocator, store: this.store, ledgerSize: options.ledgerSize });
    this.stateFile = options.stateFile;
    this.userFeatures = options.userFeatures;
    this.awaitSequence = options.readAfter;
  }

  /**
   * Adds or updates ads. Ads with an embedding are served by the behavioural generators; ads with
   * only a title, by the content generator until they get one. All or nothing, and durable when
   * the corpus has a dataDir: every check and the embedder's call come before the commit; the
   * promise resolves once searches see the batch.
   */
  async upsertAds(ads: readonly AdUpsert[]): Promise<{ embedded: number; cold: number; seq: number }> {
    const ids = toIdArray(ads.map((ad) => ad?.id), 'ads[].id');
    const cold: AdUpsert[] = [];
    ads.forEach((ad, i) => {
      if (ad.embedding !== undefined && (!(ad.embedding instanceof Float32Array) || ad.embedding.length !== this.dim)) {
        throw new DimensionMismatchError(`Expected a Float32Array of ${this.dim} values for ads[${i}].embedding but received ${ad.embedding instanceof Float32Array ? ad.embedding.length : typeof ad.embedding}`);
      }
      const bad = ad.embedding?.findIndex((v) => !Number.isFinite(v)) ?? -1;
      if (bad >= 0) throw new NonFiniteError(`Expected finite values for ads[${i}].embedding but received ${ad.embedding![bad]} at index ${bad}`);
      if (!ad.embedding && !this.store.hasEmbedding(ids[i]!) && (ad.title ?? this.store.titleOf(ad.id))) cold.push(ad);
    });
    // The text an ad will have once the batch is in.
    const coldText = (ad: AdUpsert) => `${ad.title ?? this.store.titleOf(ad.id) ?? ''} ${ad.category ?? this.store.categoryOf(ad.id) ?? ''}`;
    const prepared = await this.content.embedAds(cold.map((ad) => ({ id: ad.id, text: coldText(ad) })));
    const contentOf = new Map<bigint, Float32Array>();
    const cd = this.content.embedder.dim;
    prepared.ids.forEach((id, i) => contentOf.set(id, prepared.vectors.subarray(i * cd, (i + 1) * cd)));
    const upserts = ads.map(({ embedding, ...ad }) => ({
      ad,
      embedding,
      // An ad with an embedding leaves the cold-start corpus (if it was in it).
      content: embedding ? (this.store.hasContent(ad.id) ? null : undefined) : contentOf.get(ad.id),
    }));
    const seq = await this.corpus.write({ upserts });
    return { embedded: ads.filter((a) => a.embedding).length, cold: prepared.ids.length, seq };
  }

  /**
   * A sequence to pass as `readAfter` to read every write this engine has acknowledged so far: the
   * catalog stream's on a cluster router (ClusterEngine), the corpus's own otherwise.
   */
  get writtenThrough(): number {
    return this.corpus.orderedThrough || this.corpus.stats().head;
  }

  /** Removes ads from the corpus; resolves with how many existed, once searches no longer see them. */
  async removeAds(ids: readonly bigint[]): Promise<number> {
    const existing = [...new Set(toIdArray(ids, 'ids'))].filter((id) => this.store.has(id));
    if (existing.length > 0) await this.corpus.write({ removes: existing });
    return existing.length;
  }

  /** Charges spend to ads and their campaigns; an ad or campaign that runs out stops being eligible. */
  async spend(charges: readonly { id: bigint; amount: number }[]): Promise<void> {
    charges.forEach((c, i) => numberIn(c?.amount, `charges[${i}].amount`, -Number.MAX_VALUE, Number.MAX_VALUE));
    await this.corpus.write({ spends: charges });
  }

  /** Sets campaign budgets (Infinity: unlimited); ads of a campaign at or below 0 are ineligible. */
  async setCampaignBudgets(budgets: readonly { campaignId: string; budget: number }[]): Promise<void> {
    budgets.forEach((b, i) => {
      if (typeof b?.campaignId !== 'string') throw invalid('a string', `budgets[${i}].campaignId`, b?.campaignId);
      if (typeof b.budget !== 'number' || Number.isNaN(b.budget)) throw invalid('a number', `budgets[${i}].budget`, b.budget);
    });
    await this.corpus.write({ campaigns: budgets });
  }

  async retrieve(request: RetrieveRequest): Promise<RetrieveResult> {
    if (!request?.features && this.userFeatures && typeof request?.userId === 'string') {
      const features = this.userFeatures(request.userId);
      if (features) request = { ...request, features };
    }
    if (request?.readAfter !== undefined) {
      const seq = integerIn(request.readAfter, 'request.readAfter', 0, Number.MAX_SAFE_INTEGER);
      if (this.awaitSequence) await this.awaitSequence(seq, integerIn(request.deadlineMs ?? readAfterWaitMs, 'request.deadlineMs', 1, 60_000));
    }
    return this.pipeline.retrieve(request);
  }

  feedback(events: readonly FeedbackInput[]): { accepted: number; unmatched: number } {
    return this.pipeline.feedback(events);
  }

  /** Writes the allocator's and the generators' learned state (atomically). */
  async saveState(path = this.stateFile): Promise<void> {
    if (!path) return;
    const generators: Record<string, unknown> = {};
    for (const name of this.pipeline.generatorNames) {
      const state = this.pipeline.generator(name)!.saveState?.();
      if (state !== undefined) generators[name] = state;
    }
    await writeStateFile(path, { allocator: this.allocator.saveState(), generators });
  }

  /** Restores learned state; false when there is no state file yet. */
  async restoreState(path = this.stateFile): Promise<boolean> {
    if (!path) return false;
    const state = (await readStateFile(path)) as { allocator?: unknown; generators?: Record<string, unknown> } | undefined;
    if (state === undefined) return false;
    this.allocator.restoreState(state.allocator);
    for (const [name, s] of Object.entries(state.generators ?? {})) this.pipeline.generator(name)?.restoreState?.(s);
    return true;
  }

  /** Waits for queued writes and frees the corpus, when this engine opened it. */
  async close(): Promise<void> {
    if (this.ownsCorpus) await this.corpus.close();
  }
}

function corpusOptions(options: EngineOptions) {
  return {
    dim: options.dim,
    metric: options.metric ?? 'ip',
    index: options.index,
    contentDim: options.embedder?.dim ?? 256,
    contentPrecision: options.contentPrecision,
    threads: options.threads,
  };
}

function makeAllocator(options: EngineOptions, scenarios: Scenarios): QuotaAllocator {
  const choice = options.allocator ?? 'learned';
  if (typeof choice === 'object') return choice;
  if (choice === 'static') {
    const shares: Record<string, Record<string, number>> = {};
    for (const s of scenarios) if (s.staticShares) shares[s.name] = s.staticShares;
    return new StaticAllocator(shares);
  }
  if (choice === 'learned') return new ThompsonAllocator(options.allocatorOptions);
  throw invalid("'learned', 'static' or an allocator object", 'CandidateEngine options.allocator', choice);
}

/** The default scenarios with the sequence generator first. */
function withSequence(scenarios: ScenarioConfig[]): ScenarioConfig[] {
  return scenarios.map((s) => ({ ...s, generators: ['sequence', ...s.generators] }));
}
