/**
 * The standard assembly: an ad store, a behavioural corpus in any VectorIndex, the four built-in
 * generators (two-tower, learned scorer, content for cold start, popularity), an allocator and the
 * pipeline, with learned state saved to and restored from one file.
 */
import { AdIndex } from '../ad-index';
import type { Metric } from '../metric';
import { DimensionMismatchError, NonFiniteError } from '../errors';
import { toIdArray } from '../ids';
import { integerIn, invalid, knownOptions } from '../validate';
import type { VectorIndex } from '../vector-index';
import { AdStore, type AdInput } from './ad-store';
import type { QuotaAllocator } from './allocators/allocator';
import { StaticAllocator } from './allocators/static';
import { ThompsonAllocator, type ThompsonOptions } from './allocators/thompson';
import { EmbeddingCorpus } from './embedding-corpus';
import type { Embedder } from './embedders/embedder';
import { HashedNgramEmbedder } from './embedders/hashed';
import { ContentGenerator } from './generators/content';
import { PopularityGenerator, type PopularityOptions } from './generators/popularity';
import { DotProductScorer, ScorerGenerator, type Scorer } from './generators/scorer';
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
  /**
   * Builds the behavioural index (default: an exact AdIndex, kind 'flat'). An AdIndex filters
   * eligibility inside its search; any other VectorIndex leaves it to the pipeline.
   */
  createIndex?: (dim: number, metric: Metric) => VectorIndex | AdIndex;
  /** Use this corpus instead of building one; an AdIndex corpus brings its store (engines sharing it share the store). */
  corpus?: EmbeddingCorpus;
  /** Text embeddings for cold-start ads (default: hashed n-grams, 256 dimensions). */
  embedder?: Embedder;
  /** Use this content generator instead of building one (to share its corpus). */
  content?: ContentGenerator;
  /** 'full' (default: the scorer scans the corpus) or 'two-stage' (ANN first stage, exact re-rank). */
  scorerMode?: 'full' | 'two-stage';
  /** A learned scorer (default: dot product over the behavioural embeddings). */
  scorer?: Scorer;
  popularity?: PopularityOptions;
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
}

/** An ad to add or update: its attributes, and an embedding and/or a text. */
export interface AdUpsert extends AdInput {
  /** Behavioural embedding (dim values); an ad with one leaves the cold-start corpus. */
  embedding?: Float32Array;
}

export const defaultScenarios: ScenarioConfig[] = [
  { name: 'home', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 200, deadlineMs: 50 },
  { name: 'search', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 200, deadlineMs: 30 },
  { name: 'related', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 100, deadlineMs: 30 },
];

const optionNames = [
  'dim', 'metric', 'scenarios', 'allocator', 'allocatorOptions', 'createIndex', 'corpus', 'embedder', 'content',
  'scorerMode', 'scorer', 'popularity', 'generators', 'userFeatures', 'stateFile', 'ledgerSize', 'threads',
  'filterCacheSize', 'embedderCacheSize', 'embedderCallsPerSecond',
];

export class CandidateEngine {
  readonly dim: number;
  readonly store: AdStore;
  readonly corpus: EmbeddingCorpus;
  readonly content: ContentGenerator;
  readonly popularity: PopularityGenerator;
  readonly allocator: QuotaAllocator;
  readonly pipeline: Pipeline;
  readonly stateFile: string | undefined;
  private readonly userFeatures: ((userId: string) => UserFeatures | undefined) | undefined;
  private readonly ownsIndexes: (VectorIndex | AdIndex)[] = [];

  constructor(options: EngineOptions) {
    const o = knownOptions(options, 'CandidateEngine options', optionNames);
    this.dim = integerIn(o.dim, 'CandidateEngine options.dim', 1, 65536);
    const metric = options.metric ?? 'ip';
    const scorerMode = options.scorerMode ?? 'full';
    if (scorerMode !== 'full' && scorerMode !== 'two-stage') throw invalid("'full' or 'two-stage'", 'CandidateEngine options.scorerMode', scorerMode);
    this.store = options.corpus?.store ?? options.content?.corpus.store ?? new AdStore();
    if (options.corpus) {
      if (options.corpus.dim !== this.dim) throw new DimensionMismatchError(`Expected a corpus of dim ${this.dim} for CandidateEngine options.corpus but received dim ${options.corpus.dim}`);
      this.corpus = options.corpus;
    } else {
      const index = options.createIndex ? options.createIndex(this.dim, metric) : new AdIndex({ dim: this.dim, metric, threads: options.threads });
      this.ownsIndexes.push(index);
      this.corpus = new EmbeddingCorpus(index, { keepVectors: scorerMode === 'two-stage' && !options.scorer, store: this.store, filterCacheSize: options.filterCacheSize });
    }
    if (options.content) {
      this.content = options.content;
    } else {
      const embedder = options.embedder ?? new HashedNgramEmbedder({ dim: 256 });
      const contentIndex = new AdIndex({ dim: embedder.dim, metric: 'cosine', threads: options.threads });
      this.ownsIndexes.push(contentIndex);
      this.content = new ContentGenerator({
        embedder,
        corpus: new EmbeddingCorpus(contentIndex, { store: this.store, filterCacheSize: options.filterCacheSize }),
        cacheSize: options.embedderCacheSize,
        callsPerSecond: options.embedderCallsPerSecond,
      });
    }
    this.popularity = new PopularityGenerator(options.popularity);
    const scenarios = new Scenarios(options.scenarios ?? defaultScenarios);
    this.allocator = makeAllocator(options, scenarios);
    const generators: CandidateGenerator[] = [
      new TwoTowerGenerator({ corpus: this.corpus }),
      new ScorerGenerator({ scorer: options.scorer ?? new DotProductScorer(this.corpus), mode: scorerMode, firstStage: this.corpus }),
      this.content,
      this.popularity,
      ...(options.generators ?? []),
    ];
    this.pipeline = new Pipeline({ generators, scenarios, allocator: this.allocator, store: this.store, ledgerSize: options.ledgerSize });
    this.stateFile = options.stateFile;
    this.userFeatures = options.userFeatures;
  }

  /**
   * Adds or updates ads. Ads with an embedding are served by the behavioural generators; ads with
   * only a title, by the content generator until they get one. All or nothing: every check and
   * the embedder's call come before the first write, so a bad ad or an embedder failure leaves
   * the corpora and the store as they were.
   */
  async upsertAds(ads: readonly AdUpsert[]): Promise<{ embedded: number; cold: number }> {
    const withEmbedding: AdUpsert[] = [];
    const cold: AdUpsert[] = [];
    const ids = toIdArray(ads.map((ad) => ad?.id), 'ads[].id');
    ads.forEach((ad, i) => {
      if (ad.embedding !== undefined && (!(ad.embedding instanceof Float32Array) || ad.embedding.length !== this.dim)) {
        throw new DimensionMismatchError(`Expected a Float32Array of ${this.dim} values for ads[${i}].embedding but received ${ad.embedding instanceof Float32Array ? ad.embedding.length : typeof ad.embedding}`);
      }
      const bad = ad.embedding?.findIndex((v) => !Number.isFinite(v)) ?? -1;
      if (bad >= 0) throw new NonFiniteError(`Expected finite values for ads[${i}].embedding but received ${ad.embedding![bad]} at index ${bad}`);
      if (ad.embedding) withEmbedding.push(ad);
      else if (!this.corpus.has(ids[i]!) && (ad.title ?? this.store.titleOf(ad.id))) cold.push(ad);
    });
    // The texts and attributes the store will hold once the batch is in (it is written last).
    const coldText = (ad: AdUpsert) => `${ad.title ?? this.store.titleOf(ad.id) ?? ''} ${ad.category ?? this.store.categoryOf(ad.id) ?? ''}`;
    const prepared = await this.content.embedAds(cold.map((ad) => ({ id: ad.id, text: coldText(ad) })), undefined, cold.length > 0 ? this.store.nativeAttributes(cold) : undefined);
    if (withEmbedding.length > 0) {
      const vectors = new Float32Array(withEmbedding.length * this.dim);
      withEmbedding.forEach((ad, i) => vectors.set(ad.embedding!, i * this.dim));
      await this.corpus.upsert(withEmbedding.map((a) => a.id), vectors, this.store.nativeAttributes(withEmbedding));
    }
    const coldIndexed = await this.content.write(prepared);
    if (withEmbedding.length > 0) this.content.remove(withEmbedding.map((a) => a.id));
    // Unknown fields (embedding) are ignored by the store. Ads already indexed whose attributes
    // changed are rewritten in the indexes (the store tells them).
    this.store.upsertMany(ads);
    return { embedded: withEmbedding.length, cold: coldIndexed };
  }

  /** Removes ads from every corpus and the store; returns how many existed. */
  removeAds(ids: readonly bigint[]): number {
    this.corpus.remove(ids);
    this.content.remove(ids);
    let removed = 0;
    for (const id of ids) if (this.store.remove(id)) removed++;
    return removed;
  }

  retrieve(request: RetrieveRequest): Promise<RetrieveResult> {
    if (!request?.features && this.userFeatures && typeof request?.userId === 'string') {
      const features = this.userFeatures(request.userId);
      if (features) request = { ...request, features };
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

  /** Frees the indexes this engine built. */
  close(): void {
    for (const index of this.ownsIndexes) index.close();
  }
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
