/**
 * The behavioural index of a sharded corpus as the generators see it (SearchIndex): a search is a
 * ClusterRouter scatter-gather, filtered by the plain EligibilityFilter (the codes the router's
 * corpus interned in catalog order, which are the shards' codes too). Shards that miss the
 * deadline come back as `missingShards` on the results, and on to the generator's report.
 *
 * Read-your-writes: once a request has waited for a write (readAfter), its shard-log position is
 * a floor for every later search from this router: no search then reads an older state than one
 * a client was promised (monotonic reads). Replicas past the floor answer at once.
 */
import { CompiledFilter, type EligibilityFilter } from '../ad-index';
import type { IndexFilter, SearchIndex } from '../corpus/search-index';
import { AbortedError, InvalidArgumentError } from '../errors';
import type { Metric } from '../metric';
import { SearchResults } from '../results';
import { laterPosition, type LogPosition } from './log-position';
import type { ClusterRouter } from './router';

export interface RemoteIndexOptions {
  /** Shard answers later than this are left out and reported missing (default: the router's deadline). */
  deadlineMs?: number;
  /** Hedge to a second replica after this long (default: the router's). */
  hedgeAfterMs?: number;
}

export class RemoteIndex implements SearchIndex {
  readonly dim: number;
  readonly metric: Metric;
  private floor: LogPosition = {};

  /** `size` gives the ads the catalog knows (an upper bound of the ads with an embedding). */
  constructor(private readonly router: ClusterRouter, private readonly sizeOf: () => number, private readonly options: RemoteIndexOptions = {}) {
    const map = router.shardMap;
    if (!map) throw new InvalidArgumentError('Expected a router that knows its shard map for a RemoteIndex');
    this.dim = map.dim;
    this.metric = map.metric;
  }

  get size(): number {
    return this.sizeOf();
  }

  /** The shard-log position every search reads at least (raised by readAfter). */
  get readFloor(): LogPosition {
    return this.floor;
  }

  /** Makes every later search read at least `position`. */
  readAfter(position: LogPosition): void {
    this.floor = laterPosition(this.floor, position);
  }

  /** The description itself: the shards compile it (the search codec carries it). */
  async filter(description: EligibilityFilter): Promise<IndexFilter> {
    return description;
  }

  async search(queries: Float32Array, k: number, options: { filter?: IndexFilter; signal?: AbortSignal } = {}): Promise<SearchResults> {
    if (options.signal?.aborted) throw new AbortedError('The search was aborted before it was sent to the shards');
    if (options.filter instanceof CompiledFilter) throw new InvalidArgumentError('Expected a filter description for a RemoteIndex, not one compiled by a local AdIndex');
    const answer = await this.router.search(queries, k, {
      ...(options.filter ? { filter: options.filter } : {}),
      ...(Object.keys(this.floor).length > 0 ? { readAfter: this.floor } : {}),
      ...(this.options.deadlineMs !== undefined ? { deadlineMs: this.options.deadlineMs } : {}),
      ...(this.options.hedgeAfterMs !== undefined ? { hedgeAfterMs: this.options.hedgeAfterMs } : {}),
    });
    const r = answer.results;
    return new SearchResults(r.k, r.metric, { ids: r.ids, scores: r.scores, counts: r.counts, ...(answer.partial ? { missingShards: answer.missingShards } : {}) });
  }
}
