/**
 * Content retrieval for cold-start ads: ads that have no behavioural embedding yet are found by
 * their text (title and category) embedded with a pluggable Embedder, matched against the user's
 * query text or interest keywords embedded the same way. Ads leave this corpus when they graduate
 * (get a behavioural embedding) or are removed.
 */
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import type { Embedder } from '../embedders/embedder';
import { requestEligibility, type CandidateGenerator, type GeneratedCandidate, type GeneratorInput, type UserFeatures } from '../types';
import { toCandidates } from './two-tower';
import { integerIn, numberIn } from '../../validate';
import { EmbedderBudgetError } from '../errors';
import { TokenBucket } from '../token-bucket';

/** Ads embedded by ContentGenerator.embedAds(), ready to write. */
export interface PreparedAds {
  ids: bigint[];
  vectors: Float32Array;
}

export interface ContentGeneratorOptions {
  name?: string;
  embedder: Embedder;
  /** A corpus over the embedder's dimension; a 'cosine' index suits text embeddings. */
  corpus: EmbeddingCorpus;
  /** Text to match (default: features.text, else the recent categories). */
  queryText?: (features: UserFeatures) => string | undefined;
  /** Query embeddings kept, keyed by text, least recently used dropped first (default 10,000). */
  cacheSize?: number;
  /**
   * Embedder calls for query texts not in the cache, per second (default: no limit), with twice
   * as many saved up. Past it the generator answers nothing for new texts (EmbedderBudgetError,
   * reported as its error) while cached texts are still served.
   */
  callsPerSecond?: number;
}

export class ContentGenerator implements CandidateGenerator {
  readonly name: string;
  readonly embedder: Embedder;
  readonly corpus: EmbeddingCorpus;
  private readonly queryText: (f: UserFeatures) => string | undefined;
  /** Text -> its embedding, in use order (the least recently used first); a call in flight is shared. */
  private readonly cache = new Map<string, Promise<Float32Array>>();
  private readonly cacheSize: number;
  private readonly budget: TokenBucket | undefined;
  /** Embedder calls made for query texts (cache misses). */
  queryCalls = 0;

  constructor(options: ContentGeneratorOptions) {
    this.name = options.name ?? 'content';
    this.embedder = options.embedder;
    this.corpus = options.corpus;
    this.cacheSize = integerIn(options.cacheSize ?? 10_000, 'ContentGenerator options.cacheSize', 0, 10_000_000);
    const rate = options.callsPerSecond;
    this.budget = rate === undefined ? undefined : new TokenBucket(numberIn(rate, 'ContentGenerator options.callsPerSecond', 1e-3, 1e9), Math.max(1, 2 * rate));
    this.queryText = options.queryText ?? ((f) => f.text ?? f.categories?.join(' '));
  }

  /**
   * Embeds ads' texts for the corpus (the engine commits them with the ads). Texts without a word
   * are skipped (they have no direction). Writes nothing: the embedder, the step that fails for
   * reasons outside the batch, runs before any write.
   */
  async embedAds(ads: readonly { id: bigint; text: string }[], signal?: AbortSignal): Promise<PreparedAds> {
    if (ads.length === 0) return { ids: [], vectors: new Float32Array(0) };
    const vectors = await this.embedder.embed(ads.map((a) => a.text), signal);
    const dim = this.embedder.dim;
    const keep: number[] = [];
    for (let i = 0; i < ads.length; i++) {
      let norm = 0;
      for (let j = 0; j < dim; j++) norm += vectors[i * dim + j]! ** 2;
      if (norm > 0) keep.push(i);
    }
    const packed = new Float32Array(keep.length * dim);
    keep.forEach((row, i) => packed.set(vectors.subarray(row * dim, (row + 1) * dim), i * dim));
    return { ids: keep.map((i) => ads[i]!.id), vectors: packed };
  }

  /** The embedding of a query text: from the cache, else one embedder call within the budget. */
  private queryVector(text: string): Promise<Float32Array> {
    let vector = this.cache.get(text);
    if (vector) {
      this.cache.delete(text);
      this.cache.set(text, vector);
      return vector;
    }
    if (this.budget && !this.budget.take()) {
      return Promise.reject(new EmbedderBudgetError(`Embedder budget spent: at most ${this.budget.rate} calls per second for query texts not seen recently`));
    }
    this.queryCalls++;
    // No request's signal: the call is shared by every request asking for the text, and paid anyway.
    vector = this.embedder.embed([text]);
    if (this.cacheSize > 0) {
      vector.catch(() => this.cache.delete(text));
      this.cache.set(text, vector);
      if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    }
    return vector;
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    const text = this.queryText(input.features)?.trim();
    if (!text || input.fetch === 0 || this.corpus.size === 0) return [];
    const query = await this.queryVector(text);
    if (!query.some((v) => v !== 0)) return [];
    const hit = await this.corpus.search(query, input.fetch, input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility), input.signal);
    return toCandidates(hit);
  }
}
