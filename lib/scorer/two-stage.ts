/**
 * Two-stage retrieval: a cheap first stage (an AdIndex: exact, e.g. a FlatIndex, or an ANN kind,
 * over the same ads' two-tower embeddings) picks K' candidates per user, and the learned
 * scorer ranks them exactly. Optionally measures recall of the final top-k against the exact
 * learned top-k (a full scan) on a sample of the users.
 */
import { CompiledFilter, type AdIndex } from '../ad-index';
import { InvalidArgumentError } from '../errors';
import type { SearchResults } from '../results';
import { float32Array, integerIn, invalid, knownOptions } from '../validate';
import type { BlendOptions, LearnedScorer, ScorerSearchOptions } from './scorer';

/** What the first stage must offer: any AdIndex (FlatIndex and FaissIndex are presets of it) fits. */
export type FirstStage = Pick<AdIndex, 'dim' | 'search'>;

export interface TwoStageOptions {
  firstStage: FirstStage;
  scorer: LearnedScorer;
  /** K': candidates the first stage hands to the scorer per user (1 to 100,000). */
  candidates: number;
}

export interface TwoStageSearchOptions extends BlendOptions {
  /** First-stage queries (nu x firstStage.dim); default: the users themselves when the dims agree. */
  firstStageQueries?: Float32Array;
  /** Passed to the scorer. A filter compiled by the first stage's AdIndex also filters the first
   * stage, so K' holds only eligible ads; otherwise ineligible candidates are dropped at re-ranking. */
  eligible?: ScorerSearchOptions['eligible'];
  /** true: measure recall on every user; a number in (0, 1]: on that fraction of them (at least one). */
  measureRecall?: boolean | number;
  threads?: number;
}

export interface TwoStageResults {
  results: SearchResults;
  /** Mean recall@k against the exact learned top-k over the sampled users (undefined if not measured). */
  recall?: number;
  /** Users the recall was measured on. */
  recallUsers: number;
  firstStageMs: number;
  rerankMs: number;
}

const optionNames = ['scenario', 'weights', 'firstStageQueries', 'eligible', 'measureRecall', 'threads'] as const;

export class TwoStageRetriever {
  readonly firstStage: FirstStage;
  readonly scorer: LearnedScorer;
  readonly candidates: number;
  private measured = { users: 0, recallSum: 0 };

  constructor(options: TwoStageOptions) {
    const o = knownOptions(options, 'TwoStageRetriever options', ['firstStage', 'scorer', 'candidates']) as Partial<TwoStageOptions>;
    if (!o.firstStage || typeof o.firstStage.search !== 'function') throw invalid('an index with search()', 'options.firstStage', o.firstStage);
    if (!o.scorer || typeof o.scorer.search !== 'function') throw invalid('a LearnedScorer', 'options.scorer', o.scorer);
    this.firstStage = o.firstStage;
    this.scorer = o.scorer;
    this.candidates = integerIn(o.candidates, 'options.candidates', 1, 100_000);
  }

  /** Running mean recall over every measured user so far. */
  get recallStats(): { users: number; meanRecall: number } {
    const { users, recallSum } = this.measured;
    return { users, meanRecall: users ? recallSum / users : NaN };
  }

  async search(users: Float32Array, k: number, options?: TwoStageSearchOptions): Promise<TwoStageResults> {
    const o = knownOptions(options, 'two-stage search options', optionNames) as TwoStageSearchOptions;
    float32Array(users, 'users');
    const nu = users.length / this.scorer.userDim;
    const queries = o.firstStageQueries ?? users;
    float32Array(queries, 'options.firstStageQueries');
    if (queries.length !== nu * this.firstStage.dim) {
      throw new InvalidArgumentError(
        `Expected firstStageQueries of users (${nu}) x first-stage dim ${this.firstStage.dim} = ${nu * this.firstStage.dim} values but received ${queries.length}` +
          (o.firstStageQueries ? '' : ' (the users themselves: pass options.firstStageQueries when the first stage uses another embedding)'),
      );
    }
    const threads = o.threads ?? 0;
    const blend: BlendOptions = o.scenario !== undefined ? { scenario: o.scenario } : o.weights !== undefined ? { weights: o.weights } : {};
    const started = performance.now();
    const filterFirstStage = o.eligible instanceof CompiledFilter && (o.eligible.owner as unknown) === this.firstStage;
    const first = await this.firstStage.search(queries, this.candidates, filterFirstStage ? { threads, filter: o.eligible as CompiledFilter } : { threads });
    const firstStageMs = performance.now() - started;
    const results = await this.scorer.search(users, k, { ...blend, eligible: o.eligible, candidates: first, threads });
    const rerankMs = performance.now() - started - firstStageMs;

    const sample = sampleUsers(nu, o.measureRecall);
    if (sample.length === 0) return { results, recallUsers: 0, firstStageMs, rerankMs };
    const sampledUsers = new Float32Array(sample.length * this.scorer.userDim);
    sample.forEach((u, i) => sampledUsers.set(users.subarray(u * this.scorer.userDim, (u + 1) * this.scorer.userDim), i * this.scorer.userDim));
    const exact = await this.scorer.search(sampledUsers, k, { ...blend, eligible: o.eligible, threads });
    let sum = 0;
    sample.forEach((u, i) => {
      const truth = exact.row(i).ids;
      const found = new Set(results.row(u).ids);
      let hits = 0;
      for (const id of truth) if (found.has(id)) hits++;
      sum += truth.length ? hits / truth.length : 1;
    });
    this.measured.users += sample.length;
    this.measured.recallSum += sum;
    return { results, recall: sum / sample.length, recallUsers: sample.length, firstStageMs, rerankMs };
  }
}

function sampleUsers(nu: number, measure: boolean | number | undefined): number[] {
  if (measure === undefined || measure === false) return [];
  if (measure === true) return Array.from({ length: nu }, (_, i) => i);
  if (typeof measure !== 'number' || !(measure > 0 && measure <= 1)) throw invalid('true or a fraction in (0, 1]', 'options.measureRecall', measure);
  const picked = Array.from({ length: nu }, (_, i) => i).filter(() => Math.random() < measure);
  return picked.length ? picked : [Math.floor(Math.random() * nu)];
}
