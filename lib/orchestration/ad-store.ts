/**
 * The ads' eligibility attributes, held in Node next to the indexes: the pipeline filters every
 * generator's candidates here (active, budget left, geo targeting, request filters). Index-level
 * filtered search can later push the same predicate down into the scan; this stays the reference.
 */
import type { EligibilityFilter } from './types';

export interface AdAttributes {
  id: bigint;
  advertiserId: string;
  campaignId: string;
  category: string;
  /** Geos the ad targets; empty means everywhere. */
  geos: string[];
  active: boolean;
  /** Money left on the ad itself; Infinity when only the campaign's budget applies. */
  budgetLeft: number;
  /** Text for the content generator. */
  title?: string;
}

export type AdInput = Partial<AdAttributes> & { id: bigint };

export class AdStore {
  private readonly ads = new Map<bigint, AdAttributes>();
  private readonly campaignBudgets = new Map<string, number>();

  get size(): number {
    return this.ads.size;
  }

  get(id: bigint): AdAttributes | undefined {
    return this.ads.get(id);
  }

  /** Inserts or updates; fields not given keep their value (or a permissive default for new ads). */
  upsert(input: AdInput): AdAttributes {
    const old = this.ads.get(input.id);
    const ad: AdAttributes = {
      id: input.id,
      advertiserId: input.advertiserId ?? old?.advertiserId ?? '',
      campaignId: input.campaignId ?? old?.campaignId ?? '',
      category: input.category ?? old?.category ?? '',
      geos: input.geos ?? old?.geos ?? [],
      active: input.active ?? old?.active ?? true,
      budgetLeft: input.budgetLeft ?? old?.budgetLeft ?? Infinity,
      title: input.title ?? old?.title,
    };
    this.ads.set(ad.id, ad);
    return ad;
  }

  remove(id: bigint): boolean {
    return this.ads.delete(id);
  }

  setCampaignBudget(campaignId: string, amount: number): void {
    this.campaignBudgets.set(campaignId, amount);
  }

  campaignBudget(campaignId: string): number {
    return this.campaignBudgets.get(campaignId) ?? Infinity;
  }

  /** Charges an ad's spend to the ad and its campaign; either running out makes the ad ineligible. */
  spend(id: bigint, amount: number): void {
    const ad = this.ads.get(id);
    if (!ad) return;
    ad.budgetLeft -= amount;
    const campaign = this.campaignBudgets.get(ad.campaignId);
    if (campaign !== undefined) this.campaignBudgets.set(ad.campaignId, campaign - amount);
  }

  /** Whether the ad may be served for a user in `geo` under `filter`. */
  eligible(id: bigint, geo: string | undefined, filter: CompiledFilter | undefined): boolean {
    const ad = this.ads.get(id);
    if (!ad || !ad.active || ad.budgetLeft <= 0) return false;
    if (this.campaignBudget(ad.campaignId) <= 0) return false;
    if (ad.geos.length > 0 && (geo === undefined || !ad.geos.includes(geo))) return false;
    if (filter) {
      if (filter.categories && !filter.categories.has(ad.category)) return false;
      if (filter.excludeAdvertisers?.has(ad.advertiserId)) return false;
      if (filter.excludeAds?.has(id)) return false;
    }
    return true;
  }

  *[Symbol.iterator](): IterableIterator<AdAttributes> {
    yield* this.ads.values();
  }
}

/** A request's filter with Sets, built once per request rather than once per candidate. */
export interface CompiledFilter {
  categories?: Set<string>;
  excludeAdvertisers?: Set<string>;
  excludeAds?: Set<bigint>;
}

export function compileFilter(filter: EligibilityFilter | undefined): CompiledFilter | undefined {
  if (!filter) return undefined;
  return {
    categories: filter.categories ? new Set(filter.categories) : undefined,
    excludeAdvertisers: filter.excludeAdvertisers ? new Set(filter.excludeAdvertisers) : undefined,
    excludeAds: filter.excludeAds ? new Set(filter.excludeAds) : undefined,
  };
}
