/**
 * A replica's compiled filters, per filter description. Routers running the pipeline send the same
 * few descriptions with every search (one per geo and category list); compiling one costs a pass
 * over the shard's ads, searching with a compiled one does not. AdIndex keeps compiled filters
 * current with every write, so entries stay valid; the least recently used goes past `size`.
 * Filters naming ads (`ids`) are per request and not kept.
 */
import type { AdIndex, CompiledFilter, EligibilityFilter } from '../ad-index';

export class FilterCache {
  private readonly entries = new Map<string, Promise<CompiledFilter>>();

  constructor(private readonly index: AdIndex, private readonly size = 64) {}

  /** The compiled filter for `filter` (compiled once), or the description itself when it names ads. */
  get(filter: EligibilityFilter): Promise<CompiledFilter> | EligibilityFilter {
    if (filter.ids !== undefined) return filter;
    const key = JSON.stringify(filter);
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      entry = this.index.filter(filter);
      entry.catch(() => this.entries.get(key) === entry && this.entries.delete(key));
    }
    this.entries.set(key, entry);
    if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  /** Forgets every entry (the index was replaced or retrained). */
  clear(): void {
    this.entries.clear();
  }
}
