/**
 * Learned-scorer retrieval, in two modes: 'full' asks the scorer for its exact top-k over the whole
 * corpus; 'two-stage' is TwoStageRetriever (lib/scorer/two-stage.ts): K' candidates from the
 * corpus's index under the request's compiled filter, re-ranked exactly by the scorer's reranker.
 * Any scorer plugs in through `Scorer`; `DotProductScorer` is the one built on the index;
 * LearnedScorerAdapter plugs in lib/scorer's MLP and Mixture-of-Logits models.
 */
import { AdIndex } from '../../ad-index';
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import { compiledFilter, localIndex } from '../../corpus/search-index';
import { InvalidArgumentError } from '../../errors';
import type { SearchResults } from '../../results';
import { IndexReranker, TwoStageRetriever, type BlendOptions, type Reranker } from '../../scorer';
import { markEligible } from '../merge';
import { requestEligibility, type CandidateGenerator, type GeneratedCandidate, type GeneratorInput, type RequestEligibility, type UserFeatures } from '../types';
import { toCandidates } from './two-tower';

export interface Scorer {
  readonly name: string;
  /**
   * The exact top-k over the whole corpus, when the scorer can scan it ('full' mode). A scorer
   * that can apply the request's eligibility inside its scan may, and marks its answer with markEligible().
   */
  topK?(user: Float32Array, k: number, scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]>;
  /** Ranks the first stage's candidate ids exactly ('two-stage' mode): a LearnedScorer, an IndexReranker, or another Reranker. */
  readonly reranker?: Reranker;
  /** The head blend the reranker uses for a request's scenario (default: none, the reranker's own default). */
  blend?(scenario: string): BlendOptions;
  /** Called by the CandidateEngine with its behavioural corpus: a scorer with per-ad state reads the ads from there. */
  attach?(corpus: EmbeddingCorpus): Promise<void>;
}

/**
 * The index's own similarity (the dot product for 'ip'): its exact scan for top-k, and an
 * IndexReranker over the vectors the index stores for two-stage (exact for the flat kind and, up
 * to 4,096 candidates or 2% of the ads, for approximate kinds that keep their vectors).
 */
export class DotProductScorer implements Scorer {
  readonly name = 'dot-product';
  /** Over a local index only: a remote one (a cluster's shards) serves 'full' mode. */
  readonly reranker: IndexReranker | undefined;
  private readonly corpus: EmbeddingCorpus;

  constructor(corpus: EmbeddingCorpus) {
    this.corpus = corpus;
    this.reranker = corpus.index instanceof AdIndex ? new IndexReranker(corpus.index) : undefined;
  }

  async topK(user: Float32Array, k: number, _scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    return toCandidates(await this.corpus.search(user, k, eligibility, signal));
  }
}

export interface ScorerGeneratorOptions {
  name?: string;
  scorer: Scorer;
  mode?: 'full' | 'two-stage';
  /** First stage for 'two-stage': its index, searched with the request's compiled filter. */
  firstStage?: EmbeddingCorpus;
  /** K' = fetch x this (default 4), at least fetch, at most the ads the index holds (and 100,000). */
  firstStageFactor?: number;
  /** The scorer's user representation (default: shortTerm, else embedding). */
  query?: (features: UserFeatures) => Float32Array | undefined;
  /** The first stage's query (default: embedding, else shortTerm). */
  firstStageQuery?: (features: UserFeatures) => Float32Array | undefined;
}

/** TwoStageRetriever's largest K'. */
const maxCandidates = 100_000;

export class ScorerGenerator implements CandidateGenerator {
  readonly name: string;
  readonly mode: 'full' | 'two-stage';
  private readonly scorer: Scorer;
  private readonly firstStage: EmbeddingCorpus | undefined;
  private readonly factor: number;
  private readonly query: (f: UserFeatures) => Float32Array | undefined;
  private readonly firstQuery: (f: UserFeatures) => Float32Array | undefined;

  constructor(options: ScorerGeneratorOptions) {
    this.name = options.name ?? 'scorer';
    this.scorer = options.scorer;
    this.mode = options.mode ?? 'full';
    this.firstStage = options.firstStage;
    this.factor = options.firstStageFactor ?? 4;
    this.query = options.query ?? ((f) => f.shortTerm ?? f.embedding);
    this.firstQuery = options.firstStageQuery ?? ((f) => f.embedding ?? f.shortTerm);
    if (this.mode === 'two-stage' && !this.firstStage) {
      throw new InvalidArgumentError(`Expected a firstStage corpus for ScorerGenerator mode 'two-stage' but received undefined`);
    }
    if (this.mode === 'two-stage') localIndex(this.firstStage!.index, "ScorerGenerator mode 'two-stage'");
    if (this.mode === 'two-stage' && !this.scorer.reranker) {
      throw new InvalidArgumentError(`Expected a scorer with a reranker (a LearnedScorer, an IndexReranker) for ScorerGenerator mode 'two-stage' but received ${this.scorer.name}`);
    }
    if (this.mode === 'full' && !this.scorer.topK) {
      throw new InvalidArgumentError(`Expected a scorer with topK() for ScorerGenerator mode 'full' but received ${this.scorer.name}`);
    }
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    const user = this.query(input.features);
    if (!user || input.fetch === 0) return [];
    const eligibility = input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility);
    if (this.mode === 'full') return this.scorer.topK!(user, input.fetch, input.scenario, eligibility, input.signal);
    const corpus = this.firstStage!;
    const candidates = Math.min(Math.max(Math.ceil(input.fetch * this.factor), input.fetch), corpus.size, maxCandidates);
    if (candidates === 0) return [];
    const eligible = compiledFilter(await corpus.filterFor(eligibility), "ScorerGenerator mode 'two-stage'");
    if (input.signal.aborted) return [];
    const retriever = new TwoStageRetriever({ firstStage: localIndex(corpus.index, "ScorerGenerator mode 'two-stage'"), scorer: this.scorer.reranker!, candidates });
    const { results } = await retriever.search(user, input.fetch, {
      ...(input.scenario !== undefined ? this.scorer.blend?.(input.scenario) : undefined),
      firstStageQueries: this.firstQuery(input.features) ?? user,
      eligible,
      exclude: eligibility.excludeAds,
      signal: input.signal,
    });
    // The first stage searched under the request's filter and dropped its excluded ads: every candidate is eligible.
    return markEligible(rankedCandidates(results));
  }
}

/** The one row of a re-ranking as candidates, larger scores better ('l2' distances negated). */
function rankedCandidates(results: SearchResults): GeneratedCandidate[] {
  const { ids, scores } = results.row(0);
  const sign = results.metric === 'l2' ? -1 : 1;
  return Array.from(ids, (adId, i) => ({ adId, score: sign * scores[i]! }));
}
