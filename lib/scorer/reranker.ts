/**
 * The second stage of two-stage retrieval: whatever ranks a first stage's candidate ids exactly.
 * A LearnedScorer is one as it is; IndexReranker is the one for the dot product (or the index's
 * other metric) over the vectors an AdIndex stores: the engine's default scorer.
 */
import { CompiledFilter, type AdIndex, type EligibilityFilter } from '../ad-index';
import { maxK } from '../defaults';
import { DimensionMismatchError, InvalidArgumentError } from '../errors';
import { toIdArray } from '../ids';
import { SearchResults } from '../results';
import { integerIn, invalid, knownOptions, wholeRows } from '../validate';
import type { ScorerSearchOptions } from './scorer';

/** What TwoStageRetriever asks of its second stage (the options LearnedScorer.search takes). */
export type RerankOptions = Pick<ScorerSearchOptions, 'scenario' | 'weights' | 'eligible' | 'candidates' | 'threads' | 'signal'>;

export interface Reranker {
  /** Values per user row. */
  readonly userDim: number;
  /**
   * The k best ads per user (users: nu x userDim), larger scores better except for an 'l2'
   * SearchResults (distances). With `candidates` (nu x K' ids, -1 skipped, repeats ranked once)
   * only those are ranked; without, the whole corpus (measureRecall's reference).
   */
  search(users: Float32Array, k: number, options?: RerankOptions): Promise<SearchResults>;
}

const optionNames = ['scenario', 'weights', 'eligible', 'candidates', 'threads', 'signal'] as const;

/**
 * Ranks candidates by an AdIndex's own metric over the vectors it stores: one id-filtered search
 * per user row, exact for the flat kind and, up to 4,096 candidates or 2% of the ads, for approximate
 * kinds that keep their vectors. Without candidates it is the index's own search (exact for 'flat' only).
 * Eligibility: a filter compiled by this index, or a list of eligible ids.
 */
export class IndexReranker implements Reranker {
  readonly index: AdIndex;

  constructor(index: AdIndex) {
    if (!index || typeof index.search !== 'function' || typeof index.filter !== 'function') throw invalid('an AdIndex', 'index', index);
    this.index = index;
  }

  get userDim(): number {
    return this.index.dim;
  }

  async search(users: Float32Array, k: number, options?: RerankOptions): Promise<SearchResults> {
    const o = knownOptions(options, 'IndexReranker search options', optionNames) as RerankOptions;
    if (o.scenario !== undefined || o.weights !== undefined) {
      throw new InvalidArgumentError(`Expected no scenario or weights for an IndexReranker: it ranks by the index's own metric ('${this.index.metric}'), which has no heads`);
    }
    const dim = this.index.dim;
    const nu = wholeRows(users, dim, 'users', 'userDim').length / dim;
    integerIn(k, 'k', 1, maxK);
    const { threads, signal } = o;
    const eligible = this.eligibility(o.eligible);
    if (o.candidates === undefined) {
      const filter = eligible.compiled ?? (eligible.ids ? { ids: [...eligible.ids] } : undefined);
      return this.index.search(users, k, { filter, threads, signal });
    }
    const { ids: candidates, perUser } = candidateRows(o.candidates, nu);
    const out = { ids: new BigInt64Array(nu * k).fill(-1n), scores: new Float32Array(nu * k).fill(NaN), counts: new Uint32Array(nu) };
    await Promise.all(
      Array.from({ length: nu }, async (_, u) => {
        const ids = new Set<bigint>();
        for (const id of candidates.subarray(u * perUser, (u + 1) * perUser)) if (id >= 0n && (!eligible.ids || eligible.ids.has(id))) ids.add(id);
        if (ids.size === 0) return;
        const filter: EligibilityFilter = { ...eligible.compiled?.spec, ids: [...ids] };
        const row = await this.index.search(users.subarray(u * dim, (u + 1) * dim), k, { filter, threads, signal });
        out.ids.set(row.ids, u * k);
        out.scores.set(row.scores, u * k);
        out.counts[u] = row.counts[0]!;
      }),
    );
    return new SearchResults(k, this.index.metric, out);
  }

  /** A compiled filter's predicates apply as its spec (fields ANDed with the candidate ids); an id list as a set. */
  private eligibility(eligible: RerankOptions['eligible']): { compiled?: CompiledFilter; ids?: Set<bigint> } {
    if (eligible === undefined) return {};
    if (eligible instanceof CompiledFilter) {
      if (eligible.owner !== this.index) throw new InvalidArgumentError('Expected a filter compiled by this index (index.filter()) for options.eligible');
      const listed = eligible.spec.ids === undefined ? undefined : new Set(toIdArray(eligible.spec.ids, 'options.eligible.spec.ids'));
      return { compiled: eligible, ids: listed };
    }
    if (eligible instanceof Uint8Array) {
      throw invalid('a CompiledFilter of this index or a list of eligible ids (an AdIndex has no insertion order for a mask)', 'options.eligible', eligible);
    }
    return { ids: new Set(toIdArray(eligible, 'options.eligible')) };
  }
}

function candidateRows(candidates: unknown, nu: number): { ids: BigInt64Array; perUser: number } {
  const ids = candidates instanceof SearchResults ? candidates.ids : candidates;
  if (!(ids instanceof BigInt64Array)) throw invalid('a BigInt64Array of users x K ids or SearchResults', 'options.candidates', candidates);
  if (ids.length === 0 || ids.length % nu !== 0) {
    throw new DimensionMismatchError(`Expected users (${nu}) x K candidate ids but received ${ids.length}`);
  }
  return { ids, perUser: ids.length / nu };
}
