/**
 * Two-tower retrieval: the user tower's embedding against the ads' embeddings. Over an AdIndex
 * corpus the search takes the request's eligibility filter, so it returns only eligible ads.
 */
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import { markEligible, markPartial } from '../merge';
import { requestEligibility, type CandidateGenerator, type GeneratedCandidate, type GeneratorInput, type UserFeatures } from '../types';

export interface TwoTowerOptions {
  name?: string;
  corpus: EmbeddingCorpus;
  /** Which user vector to search with (default: features.embedding). */
  query?: (features: UserFeatures) => Float32Array | undefined;
}

export class TwoTowerGenerator implements CandidateGenerator {
  readonly name: string;
  private readonly corpus: EmbeddingCorpus;
  private readonly query: (features: UserFeatures) => Float32Array | undefined;

  constructor(options: TwoTowerOptions) {
    this.name = options.name ?? 'two-tower';
    this.corpus = options.corpus;
    this.query = options.query ?? ((f) => f.embedding);
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    const query = this.query(input.features);
    if (!query || input.fetch === 0) return [];
    const hit = await this.corpus.search(query, input.fetch, input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility), input.signal);
    return toCandidates(hit);
  }
}

/** A corpus hit as candidates, marked eligible when the search guaranteed it, and partial when shards were missing. */
export function toCandidates(hit: { adIds: readonly bigint[]; scores: readonly number[]; eligible?: boolean; missingShards?: readonly number[] }): GeneratedCandidate[] {
  const out: GeneratedCandidate[] = new Array(hit.adIds.length);
  for (let i = 0; i < out.length; i++) out[i] = { adId: hit.adIds[i]!, score: hit.scores[i]! };
  if (hit.missingShards) markPartial(out, hit.missingShards);
  return hit.eligible ? markEligible(out) : out;
}
