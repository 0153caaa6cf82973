/** What a request may see, beyond each ad's own state: the filter a corpus compiles natively. */

/** Request-level eligibility on top of the ads' own state (active, budget left, targeting). */
export interface EligibilityFilter {
  /** Only these categories. */
  categories?: string[];
  /** Never these advertisers. */
  excludeAdvertisers?: string[];
  /** Never these ads (e.g. already shown). */
  excludeAds?: bigint[];
}

/** A request's eligibility in the form a corpus turns into a native filter (and caches by `key`). */
export interface RequestEligibility {
  /** Where the user is (geo targeting). */
  readonly geo: string | undefined;
  readonly categories?: readonly string[];
  readonly excludeAdvertisers?: readonly string[];
  /** Dropped from results after the search (too specific to compile into a shared filter). */
  readonly excludeAds?: ReadonlySet<bigint>;
  /** Identifies geo, categories and excludeAdvertisers (unambiguously): requests with the same key share a compiled filter. */
  readonly key: string;
}

/** A name list as a set: sorted, repeats dropped (its order and repeats do not change a filter). */
const asSet = (names: readonly string[] | undefined) => (names ? [...new Set(names)].sort() : null);

/**
 * Builds a RequestEligibility from the user's geo and the request's filter. The key is the JSON of
 * [geo, categories, excluded advertisers] (lists as sorted sets): unambiguous whatever characters
 * the names hold, so two requests share a compiled filter only when their filters are equal.
 */
export function requestEligibility(geo: string | undefined, filter: EligibilityFilter | undefined): RequestEligibility {
  const key = JSON.stringify([geo ?? null, asSet(filter?.categories), asSet(filter?.excludeAdvertisers)]);
  return {
    geo,
    categories: filter?.categories,
    excludeAdvertisers: filter?.excludeAdvertisers,
    excludeAds: filter?.excludeAds && filter.excludeAds.length > 0 ? new Set(filter.excludeAds) : undefined,
    key,
  };
}
