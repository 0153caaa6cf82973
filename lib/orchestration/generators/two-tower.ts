/** Two-tower retrieval: the user tower's embedding against the ads' embeddings in any VectorIndex. */
import type { EmbeddingCorpus } from '../embedding-corpus';
import type { CandidateGenerator, GeneratedCandidate, GeneratorInput, UserFeatures } from '../types';

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
    const hit = await this.corpus.search(query, input.fetch);
    return hit.adIds.map((adId, i) => ({ adId, score: hit.scores[i]! }));
  }
}
