/**
 * Two-stage retrieval: a cheap first stage (an AdIndex: exact, e.g. a FlatIndex, or an ANN kind,
 * over the same ads' two-tower embeddings) picks K' candidates per user, and a re-ranker (a
 * LearnedScorer, or an IndexReranker for the index's own metric) ranks them exactly. Optionally
 * measures recall of the final top-k against the re-ranker's exact top-k (a full scan) on a sample
 * of the users. The engine's 'two-stage' scorer mode runs through here too.
 */
import { CompiledFilter, type AdIndex } from '../ad-index';
import { InvalidArgumentError } from '../errors';
import { toIdArray, type IdsInput } from '../ids';
import type { SearchResults } from '../results';
import { float32Array, integerIn, invalid, knownOptions, wholeRows } from '../validate';
import type { Reranker, RerankOptions } from './reranker';
import type { BlendOptions } from './scorer';

/** What the first stage must offer: any AdIndex (FlatIndex and FaissIndex are presets of it) fits. */
export type FirstStage = Pick<AdIndex, 'dim' | 'search'>;

export interface TwoStageOptions<S extends Reranker = Reranker> {
  firstStage: FirstStage;
  /** The second stage: a LearnedScorer, an IndexReranker, or any other Reranker. */
  scorer: S;
  /** K': candidates the first stage hands to the scorer per user (1 to 100,000). */
  candidates: number;
}

export interface TwoStageSearchOptions extends BlendOptions {
  /** First-stage queries (nu x firstStage.dim); default: the users themselves when the dims agree. */
  firstStageQueries?: Float32Array;
  /**
   * Eligible ads. A filter compiled by the first stage's AdIndex filters the first stage itself,
   * so all K' candidates are eligible and re-ranking needs no filter; anything else is passed to
   * the scorer, and ineligible candidates are dropped at re-ranking (using up some of K').
   */
  eligible?: RerankOptions['eligible'];
  /** Ads never returned (e.g. already shown): the first stage fetches K' + their count and drops them, so K' stays K' other ads. */
  exclude?: IdsInput | ReadonlySet<bigint>;
  /** true: measure recall on every user; a number in (0, 1]: on that fraction of them (at least one). */
  measureRecall?: boolean | number;
  threads?: number;
  /** Stops both stages when it aborts; the promise rejects with AbortedError (`ERR_ABORTED`). */
  signal?: AbortSignal;
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

const optionNames = ['scenario', 'weights', 'firstStageQueries', 'eligible', 'exclude', 'measureRecall', 'threads', 'signal'] as const;

export class TwoStageRetriever<S extends Reranker = Reranker> {
  readonly firstStage: FirstStage;
  readonly scorer: S;
  readonly candidates: number;
  private measured = { users: 0, recallSum: 0 };

  constructor(options: TwoStageOptions<S>) {
    const o = knownOptions(options, 'TwoStageRetriever options', ['firstStage', 'scorer', 'candidates']) as Partial<TwoStageOptions<S>>;
    if (!o.firstStage || typeof o.firstStage.search !== 'function') throw invalid('an index with search()', 'options.firstStage', o.firstStage);
    if (!o.scorer || typeof o.scorer.search !== 'function' || !Number.isInteger(o.scorer.userDim)) {
      throw invalid('a LearnedScorer or another Reranker (userDim and search())', 'options.scorer', o.scorer);
    }
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
    const userDim = this.scorer.userDim;
    const nu = wholeRows(users, userDim, 'users', 'userDim').length / userDim;
    const queries = o.firstStageQueries ?? users;
    float32Array(queries, 'options.firstStageQueries');
    if (queries.length !== nu * this.firstStage.dim) {
      throw new InvalidArgumentError(
        `Expected firstStageQueries of users (${nu}) x first-stage dim ${this.firstStage.dim} = ${nu * this.firstStage.dim} values but received ${queries.length}` +
          (o.firstStageQueries ? '' : ' (the users themselves: pass options.firstStageQueries when the first stage uses another embedding)'),
      );
    }
    const excluded = excludedIds(o.exclude);
    const { threads = 0, signal } = o;
    const blend: BlendOptions = o.scenario !== undefined ? { scenario: o.scenario } : o.weights !== undefined ? { weights: o.weights } : {};
    const started = performance.now();
    const filterFirstStage = o.eligible instanceof CompiledFilter && (o.eligible.owner as unknown) === this.firstStage;
    const firstOptions = { threads, signal, ...(filterFirstStage ? { filter: o.eligible as CompiledFilter } : {}) };
    const first = await this.firstStage.search(queries, this.candidates + excluded.size, firstOptions);
    const candidates = excluded.size ? withoutExcluded(first, excluded, this.candidates) : first;
    const firstStageMs = performance.now() - started;
    // A filtered first stage handed over only eligible ads: re-ranking them needs no filter.
    const rerankEligible = filterFirstStage ? {} : { eligible: o.eligible };
    const results = await this.scorer.search(users, k, { ...blend, ...rerankEligible, candidates, threads, signal });
    const rerankMs = performance.now() - started - firstStageMs;

    const sample = sampleUsers(nu, o.measureRecall);
    if (sample.length === 0) return { results, recallUsers: 0, firstStageMs, rerankMs };
    const sampledUsers = new Float32Array(sample.length * userDim);
    sample.forEach((u, i) => sampledUsers.set(users.subarray(u * userDim, (u + 1) * userDim), i * userDim));
    // The exact top-k without the excluded ads is within the exact top k + their count.
    const exact = await this.scorer.search(sampledUsers, k + excluded.size, { ...blend, eligible: o.eligible, threads, signal });
    let sum = 0;
    sample.forEach((u, i) => {
      const truth = exact.row(i).ids.filter((id) => !excluded.has(id)).slice(0, k);
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

function excludedIds(exclude: TwoStageSearchOptions['exclude']): ReadonlySet<bigint> {
  if (exclude === undefined) return new Set();
  if (!(exclude instanceof Set)) return new Set(toIdArray(exclude, 'options.exclude'));
  for (const id of exclude) if (typeof id !== 'bigint') throw invalid('a Set of bigint ids', 'options.exclude', id);
  return exclude;
}

/** Each row's first `perUser` ids that are not excluded (rows padded with -1). */
function withoutExcluded(first: SearchResults, excluded: ReadonlySet<bigint>, perUser: number): BigInt64Array {
  const out = new BigInt64Array(first.queries * perUser).fill(-1n);
  for (let u = 0; u < first.queries; u++) {
    let kept = 0;
    for (const id of first.row(u).ids) {
      if (kept === perUser) break;
      if (!excluded.has(id)) out[u * perUser + kept++] = id;
    }
  }
  return out;
}

function sampleUsers(nu: number, measure: boolean | number | undefined): number[] {
  if (measure === undefined || measure === false) return [];
  if (measure === true) return Array.from({ length: nu }, (_, i) => i);
  if (typeof measure !== 'number' || !(measure > 0 && measure <= 1)) throw invalid('true or a fraction in (0, 1]', 'options.measureRecall', measure);
  const picked = Array.from({ length: nu }, (_, i) => i).filter(() => Math.random() < measure);
  return picked.length ? picked : [Math.floor(Math.random() * nu)];
}
