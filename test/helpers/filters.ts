/** A JavaScript reference for eligibility filters, independent of the native compiler. */
import type { AdAttributes, AdIndexOptions, BudgetState, EligibilityFilter, IndexKind } from '../../lib';

const budgets: BudgetState[] = ['available', 'limited', 'exhausted'];

/** The reference: a spec evaluated field by field over one ad's attributes. */
export function admits(spec: EligibilityFilter, id: bigint, a: Required<AdAttributes>): boolean {
  if (spec.active !== undefined && a.active !== spec.active) return false;
  if (spec.budget && !spec.budget.includes(a.budget)) return false;
  if (spec.advertisers && !spec.advertisers.includes(a.advertiser)) return false;
  if (spec.excludeAdvertisers && spec.excludeAdvertisers.includes(a.advertiser)) return false;
  if (spec.campaigns && !spec.campaigns.includes(a.campaign)) return false;
  if (spec.categories && !spec.categories.includes(a.category)) return false;
  if (spec.geos && !spec.geos.includes(a.geo)) return false;
  if (spec.ids && !Array.from(spec.ids as Iterable<bigint | number>, BigInt).includes(id)) return false;
  return true;
}

export function randomAttributes(next: () => number): Required<AdAttributes> {
  const pick = (n: number) => Math.floor(next() * n);
  return { active: next() >= 0.25, budget: budgets[pick(3)]!, advertiser: pick(6), campaign: pick(10), category: pick(4), geo: pick(5) };
}

export function sortedIds(ids: Iterable<bigint>): bigint[] {
  return Array.from(ids).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every index kind at test sizes, IVF kinds with `nlist` lists (writes and filters touch them all). */
export function everyKind(nlist: number): { kind: IndexKind; options: Partial<AdIndexOptions> }[] {
  const nprobe = nlist / 4;
  return [
    { kind: 'flat', options: {} },
    { kind: 'ivf-flat', options: { nlist, nprobe } },
    { kind: 'ivf-pq', options: { nlist, nprobe, pqBytes: 4, rerank: 4 } },
    { kind: 'ivf-sq8', options: { nlist, nprobe } },
    { kind: 'hnsw', options: { hnswM: 8, efConstruction: 32 } },
    { kind: 'faiss', options: { factory: `IVF${nlist},Flat`, nprobe } },
  ];
}
