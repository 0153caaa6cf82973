/**
 * The bridge to lib/scorer: a LearnedScorer (dot, MLP or Mixture-of-Logits, multi-head) as the
 * Scorer of a ScorerGenerator. Full mode is its fused top-k scan; two-stage re-ranks the first
 * stage's ids with it. The request's scenario picks the model's head blend when the model has one.
 */
import type { LearnedScorer } from '../../scorer';
import type { GeneratedCandidate } from '../types';
import type { Scorer } from './scorer';

export class LearnedScorerAdapter implements Scorer {
  readonly name: string;
  private readonly model: LearnedScorer;

  constructor(model: LearnedScorer) {
    this.model = model;
    this.name = `learned:${model.kind}`;
  }

  private blend(scenario: string | undefined) {
    return scenario !== undefined && this.model.scenarios.includes(scenario) ? { scenario } : {};
  }

  async score(user: Float32Array, adIds: readonly bigint[], scenario?: string): Promise<Float64Array> {
    const out = new Float64Array(adIds.length).fill(NaN);
    if (adIds.length === 0) return out;
    const results = await this.model.search(user, adIds.length, { ...this.blend(scenario), candidates: BigInt64Array.from(adIds) });
    const { ids, scores } = results.row(0);
    const at = new Map<bigint, number>();
    adIds.forEach((id, i) => at.set(id, i));
    for (let i = 0; i < ids.length; i++) {
      const j = at.get(ids[i]!);
      if (j !== undefined) out[j] = scores[i]!;
    }
    return out;
  }

  async topK(user: Float32Array, k: number, scenario?: string, _eligibility?: unknown, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    const { ids, scores } = (await this.model.search(user, k, { ...this.blend(scenario), signal })).row(0);
    return Array.from(ids, (adId, i) => ({ adId, score: scores[i]! }));
  }
}
