/**
 * The bridge to lib/scorer: a LearnedScorer (dot, MLP or Mixture-of-Logits, multi-head) as the
 * Scorer of a ScorerGenerator. Full mode is its fused top-k scan; two-stage re-ranks the first
 * stage's ids with it (the model is the reranker). The request's scenario picks the model's head
 * blend when the model has one. Attached to a corpus (the CandidateEngine attaches it to its
 * behavioural corpus), the model reads that corpus's ads and the full scan applies each request's
 * compiled filter inside the scan.
 */
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import type { BlendOptions, LearnedScorer } from '../../scorer';
import { ConfigError } from '../errors';
import { markEligible } from '../merge';
import type { GeneratedCandidate, RequestEligibility } from '../types';
import type { Scorer } from './scorer';

export class LearnedScorerAdapter implements Scorer {
  readonly name: string;
  readonly reranker: LearnedScorer;
  private corpus: EmbeddingCorpus | undefined;
  private attaching: Promise<void> | undefined;

  constructor(model: LearnedScorer) {
    this.reranker = model;
    this.name = `learned:${model.kind}`;
  }

  /** The scenario's blend when the model defines it; otherwise the model's default. */
  blend(scenario: string | undefined): BlendOptions {
    return scenario !== undefined && this.reranker.scenarios.includes(scenario) ? { scenario } : {};
  }

  /**
   * Makes the model read `corpus`'s ads (LearnedScorer.attach on its index, unless already
   * attached there). Its failure (a model holding ads of its own, an index without its vectors)
   * rejects this Promise and every later topK.
   */
  attach(corpus: EmbeddingCorpus): Promise<void> {
    if (this.corpus) return Promise.reject(new ConfigError(`Expected a LearnedScorerAdapter used by one engine: ${this.name} is attached to a corpus already`));
    this.corpus = corpus;
    this.attaching = this.reranker.attachedIndex === corpus.index ? Promise.resolve() : this.reranker.attach(corpus.index);
    this.attaching.catch(() => undefined);  // reported to whoever awaits it
    return this.attaching;
  }

  async topK(user: Float32Array, k: number, scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    await this.attaching;
    const eligible = this.corpus && eligibility ? await this.corpus.filterFor(eligibility) : undefined;
    const { ids, scores } = (await this.reranker.search(user, k, { ...this.blend(scenario), signal, ...(eligible ? { eligible } : {}) })).row(0);
    const out = Array.from(ids, (adId, i) => ({ adId, score: scores[i]! }));
    return eligible ? markEligible(out) : out;
  }
}
