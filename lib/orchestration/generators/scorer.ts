/**
 * Learned-scorer retrieval, in two modes: 'full' asks the scorer for its exact top-k over the whole
 * corpus; 'two-stage' takes K' candidates from a cheap first stage (an ANN search) and re-ranks
 * them with the scorer. Any scorer plugs in through `Scorer`; `DotProductScorer` is the one built
 * on the exact index; LearnedScorerAdapter plugs in lib/scorer's MLP and Mixture-of-Logits models.
 */
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import { markEligible } from '../merge';
import { requestEligibility, type CandidateGenerator, type GeneratedCandidate, type GeneratorInput, type RequestEligibility, type UserFeatures } from '../types';
import { toCandidates } from './two-tower';
import { InvalidArgumentError } from '../../errors';

export interface Scorer {
  readonly name: string;
  /** Exact scores of `adIds` for one user representation (NaN for an unknown ad). */
  score(user: Float32Array, adIds: readonly bigint[], scenario?: string): Promise<Float64Array>;
  /**
   * The exact top-k over the whole corpus, when the scorer can scan it. A scorer that can apply
   * the request's eligibility inside its scan may, and marks its answer with markEligible().
   */
  topK?(user: Float32Array, k: number, scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]>;
}

/**
 * The index's own similarity (the dot product for 'ip'): its exact scan for top-k, and the scores
 * of given ads from the vectors the index stores (an id-filtered search: exact for the flat kind
 * and, up to a few thousand ads, for approximate kinds that keep their vectors).
 */
export class DotProductScorer implements Scorer {
  readonly name = 'dot-product';
  private readonly corpus: EmbeddingCorpus;

  constructor(corpus: EmbeddingCorpus) {
    this.corpus = corpus;
  }

  async score(user: Float32Array, adIds: readonly bigint[]): Promise<Float64Array> {
    const out = new Float64Array(adIds.length).fill(NaN);
    if (adIds.length === 0) return out;
    const results = await this.corpus.index.search(user, adIds.length, { filter: { ids: adIds } });
    const sign = this.corpus.index.metric === 'l2' ? -1 : 1;
    const scoreOf = new Map<bigint, number>();
    const { ids, scores } = results.row(0);
    ids.forEach((id, i) => scoreOf.set(id, sign * scores[i]!));
    adIds.forEach((id, i) => (out[i] = scoreOf.get(id) ?? NaN));
    return out;
  }

  async topK(user: Float32Array, k: number, _scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    return toCandidates(await this.corpus.search(user, k, eligibility, signal));
  }
}

export interface ScorerGeneratorOptions {
  name?: string;
  scorer: Scorer;
  mode?: 'full' | 'two-stage';
  /** First stage for 'two-stage'. */
  firstStage?: EmbeddingCorpus;
  /** K' = fetch x this (default 4). */
  firstStageFactor?: number;
  /** The scorer's user representation (default: shortTerm, else embedding). */
  query?: (features: UserFeatures) => Float32Array | undefined;
  /** The first stage's query (default: embedding, else shortTerm). */
  firstStageQuery?: (features: UserFeatures) => Float32Array | undefined;
}

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
    if (this.mode === 'full' && !this.scorer.topK) {
      throw new InvalidArgumentError(`Expected a scorer with topK() for ScorerGenerator mode 'full' but received ${this.scorer.name}`);
    }
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    const user = this.query(input.features);
    if (!user || input.fetch === 0) return [];
    const eligibility = input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility);
    if (this.mode === 'full') return this.scorer.topK!(user, input.fetch, input.scenario, eligibility, input.signal);
    const first = this.firstQuery(input.features) ?? user;
    const hit = await this.firstStage!.search(first, Math.ceil(input.fetch * this.factor), eligibility, input.signal);
    if (input.signal.aborted) return [];
    const scores = await this.scorer.score(user, hit.adIds, input.scenario);
    const order = hit.adIds.map((_, i) => i).filter((i) => !Number.isNaN(scores[i]!));
    order.sort((a, b) => scores[b]! - scores[a]!);
    const out = order.slice(0, input.fetch).map((i) => ({ adId: hit.adIds[i]!, score: scores[i]! }));
    // Re-ranking keeps a subset of the first stage: eligible when it was.
    return hit.eligible ? markEligible(out) : out;
  }
}
