/**
 * What the generators need of the index they search: an AdIndex in one process, or a RemoteIndex
 * (lib/cluster) whose search fans out over a cluster's shards. Writes never go through here.
 */
import { AdIndex, CompiledFilter, type EligibilityFilter } from '../ad-index';
import type { Metric } from '../metric';
import type { SearchResults } from '../results';
import { CorpusError } from './errors';

/** A filter the index compiled, or the plain description (a remote index sends it as it is). */
export type IndexFilter = CompiledFilter | EligibilityFilter;

export interface SearchIndex {
  readonly dim: number;
  readonly metric: Metric;
  /** Ads searchable (a remote index may give an upper bound). */
  readonly size: number;
  /** Prepares a filter for repeated searches. */
  filter(description: EligibilityFilter): Promise<IndexFilter>;
  /** Top-k per query; `missingShards` on the answer when part of a sharded corpus did not answer. */
  search(queries: Float32Array, k: number, options?: { filter?: IndexFilter; signal?: AbortSignal }): Promise<SearchResults>;
}

/** A filter from a local index's filter() (what learned scorers scan with); a clear error for a remote one's. */
export function compiledFilter(filter: IndexFilter, what: string): CompiledFilter {
  if (filter instanceof CompiledFilter) return filter;
  throw new CorpusError('ERR_CORPUS_REMOTE', `Expected a filter compiled by a local AdIndex for ${what} but the corpus's embeddings are searched remotely`);
}

/** The index as a local AdIndex, for components that read its vectors (re-ranking, learned scorers); a clear error otherwise. */
export function localIndex(index: SearchIndex, what: string): AdIndex {
  if (index instanceof AdIndex) return index;
  throw new CorpusError('ERR_CORPUS_REMOTE', `Expected a local AdIndex for ${what} but the corpus's embeddings are searched remotely (a cluster's shards): run the learned scorer in the shards (cangen shard --scorer) and use scorerMode 'full'`);
}
