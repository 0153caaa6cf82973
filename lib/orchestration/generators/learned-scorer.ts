/**
 * The bridge to lib/scorer: a LearnedScorer (dot, MLP or Mixture-of-Logits, multi-head) as the
 * Scorer of a ScorerGenerator. Full mode is its fused top-k scan; two-stage re-ranks the first
 * stage's ids with it (the model is the reranker). The request's scenario picks the model's head
 * blend when the model has one.
 */
import type { BlendOptions, LearnedScorer } from '../../scorer';
import type { GeneratedCandidate } from '../types';
import type { Scorer } from './scorer';

export class LearnedScorerAdapter implements Scorer {
  readonly name: string;
  readonly reranker: LearnedScorer;

  constructor(model: LearnedScorer) {
    this.reranker = model;
    this.name = `learned:${model.kind}`;
  }

  /** The scenario's blend when the model defines it; otherwise the model's default. */
  blend(scenario: string | undefined): BlendOptions {
    return scenario !== undefined && this.reranker.scenarios.includes(scenario) ? { scenario } : {};
  }

  async topK(user: Float32Array, k: number, scenario?: string, _eligibility?: unknown, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    const { ids, scores } = (await this.reranker.search(user, k, { ...this.blend(scenario), signal })).row(0);
    return Array.from(ids, (adId, i) => ({ adId, score: scores[i]! }));
  }
}
