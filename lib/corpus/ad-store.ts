/**
 * The ads' eligibility attributes, held in Node as typed-array columns over a dense row per ad
 * (no object per ad, no Map<bigint>): the strings (advertiser, campaign, category, geo targeting)
 * are interned into codes, titles live in one UTF-8 arena. The same codes are what the corpora
 * write into cangen's native AdIndex, whose compiled filters apply eligibility inside the search;
 * `eligible()` here is the reference the pipeline checks candidates against when a generator did
 * not filter natively (or a write was in flight while it searched).
 */
import type { CatalogAd, NameEntry } from './catalog';
import type { EligibilityFilter } from './eligibility';
import { CorpusError } from './errors';
import { grown, IdMap } from './id-map';

/** An ad's attributes: what the catalog records of it (lib/corpus/catalog.ts), vectors aside. */
export type AdAttributes = CatalogAd;

export type AdInput = Partial<AdAttributes> & { id: bigint };

/** Attribute values per ad as AdIndex stores them: active, budget, advertiser, campaign, category, geo. */
export const nativeFields = 6;
const budgetAvailable = 0;
const budgetExhausted = 2;
/** A code no string is ever given: a request list of unknown names matches nothing. */
export const noCode = 0xffffffff;

/** Strings to dense codes; code 0 is ''. */
class Dictionary {
  readonly names: string[] = [''];
  private readonly codes = new Map<string, number>([['', 0]]);

  intern(name: string): number {
    let code = this.codes.get(name);
    if (code === undefined) {
      code = this.names.length;
      this.names.push(name);
      this.codes.set(name, code);
    }
    return code;
  }

  code(name: string): number | undefined {
    return this.codes.get(name);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type AdStoreListener = (ids: readonly bigint[]) => void;

export class AdStore {
  private readonly rows = new IdMap(1024);
  private ids = new BigInt64Array(0);
  private live = new Uint8Array(0);
  private active = new Uint8Array(0);
  private budgetLeft = new Float64Array(0);
  private advertiser = new Int32Array(0);
  private campaign = new Int32Array(0);
  private category = new Int32Array(0);
  private geoSet = new Int32Array(0);
  private titleAt = new Uint32Array(0);
  private titleLength = new Int32Array(0);
  private titleBytes = new Uint8Array(1 << 16);
  private titleEnd = 0;
  private used = 0;
  private liveCount = 0;
  private readonly advertisers = new Dictionary();
  private readonly campaigns = new Dictionary();
  private readonly categories = new Dictionary();
  /** Geo targeting sets, interned: set 0 is [] (everywhere). */
  private readonly geoSets = new Dictionary();
  private readonly geoSetLists: string[][] = [[]];
  /** Per geo, the sets that contain it (plus set 0). */
  private readonly setsByGeo = new Map<string, number[]>();
  private campaignBudgets = new Float64Array(16).fill(Infinity);
  /** Per ad: bit 1 when it has a behavioural embedding in the corpus, bit 2 a content one. */
  private placed = new Uint8Array(0);
  /** Names already in the catalog, per dictionary: the ones interned after are new. */
  private readonly persisted = { advertiser: 1, campaign: 1, category: 1, geoset: 1 };
  /** Set by the corpus that owns this store: its writes go through the catalog, never here. */
  private owner: string | undefined;
  private readonly listeners: AdStoreListener[] = [];
  /** Bumped when a new advertiser, campaign, category or geo set is interned (filters keyed on names go stale). */
  private dictionaryVersion = 0;

  get size(): number {
    return this.liveCount;
  }

  /** Changes when names are first seen; part of the key of a filter compiled from names. */
  get namesVersion(): number {
    return this.dictionaryVersion;
  }

  /**
   * Hands the store to a corpus (AdCorpus): from then on its public writes throw, so that nothing
   * changes an ad without the catalog; the corpus writes through `asOwner`.
   */
  own(owner: string): void {
    this.owner = owner;
  }

  /** Runs `write` on behalf of the owning corpus. */
  asOwner<T>(write: () => T): T {
    const owner = this.owner;
    this.owner = undefined;
    try {
      return write();
    } finally {
      this.owner = owner;
    }
  }

  /** The ad as the catalog records it after `input` is applied: every attribute, none partial. */
  resolved(input: AdInput): CatalogAd {
    const row = this.rows.get(input.id);
    const current = row >= 0 && this.live[row] === 1 ? this.build(row) : undefined;
    const title = input.title ?? current?.title;
    return {
      id: input.id,
      advertiserId: input.advertiserId ?? current?.advertiserId ?? '',
      campaignId: input.campaignId ?? current?.campaignId ?? '',
      category: input.category ?? current?.category ?? '',
      geos: [...(input.geos ?? current?.geos ?? [])],
      active: input.active ?? current?.active ?? true,
      budgetLeft: input.budgetLeft ?? current?.budgetLeft ?? Infinity,
      ...(title !== undefined ? { title } : {}),
    };
  }

  /** Interns the names an ad uses (so that a batch's new names can be committed with it). */
  internNames(ad: CatalogAd): void {
    this.intern(this.advertisers, ad.advertiserId);
    this.internCampaign(ad.campaignId);
    this.intern(this.categories, ad.category);
    this.internGeos(ad.geos);
  }

  /** Names interned since the last markNamesPersisted(), with their codes. */
  unpersistedNames(): NameEntry[] {
    const out: NameEntry[] = [];
    const add = (dictionary: NameEntry['dictionary'], names: readonly string[]) => {
      for (let code = this.persisted[dictionary]; code < names.length; code++) out.push({ dictionary, code, name: names[code]! });
    };
    add('advertiser', this.advertisers.names);
    add('campaign', this.campaigns.names);
    add('category', this.categories.names);
    add('geoset', this.geoSets.names);
    return out;
  }

  markNamesPersisted(): void {
    this.persisted.advertiser = this.advertisers.names.length;
    this.persisted.campaign = this.campaigns.names.length;
    this.persisted.category = this.categories.names.length;
    this.persisted.geoset = this.geoSets.names.length;
  }

  /** Restores the catalog's names with their codes, before any ad is loaded. */
  importNames(entries: readonly NameEntry[]): void {
    const sorted = [...entries].sort((a, b) => a.code - b.code);
    for (const e of sorted) {
      const code =
        e.dictionary === 'advertiser' ? this.intern(this.advertisers, e.name)
        : e.dictionary === 'campaign' ? this.internCampaign(e.name)
        : e.dictionary === 'category' ? this.intern(this.categories, e.name)
        : this.internGeos(JSON.parse(e.name) as string[]);
      if (code !== e.code) throw new CorpusError('ERR_CATALOG', `The catalog's ${e.dictionary} name ${JSON.stringify(e.name)} has code ${e.code} but was given ${code}: the catalog's names are not contiguous`);
    }
    this.markNamesPersisted();
  }

  /** Records where the ad's vectors are: a behavioural embedding and/or a content one. */
  setPlacement(id: bigint, behavioural: boolean, content: boolean): void {
    const row = this.rows.get(id);
    if (row >= 0) this.placed[row] = (behavioural ? 1 : 0) | (content ? 2 : 0);
  }

  /** Whether the ad is in the corpus with a behavioural embedding. */
  hasEmbedding(id: bigint): boolean {
    const row = this.rows.get(id);
    return row >= 0 && this.live[row] === 1 && (this.placed[row]! & 1) === 1;
  }

  /** Whether the ad is in the corpus with a content (text) embedding. */
  hasContent(id: bigint): boolean {
    const row = this.rows.get(id);
    return row >= 0 && this.live[row] === 1 && (this.placed[row]! & 2) === 2;
  }

  /** Ids of the present ads of a campaign. */
  adsOfCampaign(campaignId: string): bigint[] {
    const code = this.campaigns.code(campaignId);
    return code === undefined ? [] : this.campaignAds(code);
  }

  /** Called with the ids whose native attributes may have changed (upserts, removals, budget changes). */
  onChange(listener: AdStoreListener): void {
    this.listeners.push(listener);
  }

  offChange(listener: AdStoreListener): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  has(id: bigint): boolean {
    const row = this.rows.get(id);
    return row >= 0 && this.live[row] === 1;
  }

  get(id: bigint): AdAttributes | undefined {
    const row = this.rows.get(id);
    if (row < 0 || this.live[row] !== 1) return undefined;
    return this.build(row);
  }

  /** Inserts or updates; fields not given keep their value (or a permissive default for new ads). */
  upsert(input: AdInput): AdAttributes {
    this.checkWritable();
    const row = this.write(input);
    this.notify([input.id]);
    return this.build(row);
  }

  /** upsert() for a batch, with one change notification. */
  upsertMany(inputs: readonly AdInput[]): void {
    this.checkWritable();
    for (const input of inputs) this.write(input);
    this.notify(inputs.map((a) => a.id));
  }

  remove(id: bigint): boolean {
    this.checkWritable();
    const row = this.rows.get(id);
    if (row < 0 || this.live[row] !== 1) return false;
    this.live[row] = 0;
    this.placed[row] = 0;
    this.liveCount--;
    this.notify([id]);
    return true;
  }

  setCampaignBudget(campaignId: string, amount: number): void {
    this.checkWritable();
    const code = this.internCampaign(campaignId);
    const before = this.campaignBudgets[code]! > 0;
    this.campaignBudgets[code] = amount;
    if (before !== amount > 0) this.notify(this.campaignAds(code));
  }

  campaignBudget(campaignId: string): number {
    const code = this.campaigns.code(campaignId);
    return code === undefined ? Infinity : this.campaignBudgets[code]!;
  }

  /** Charges an ad's spend to the ad and its campaign; either running out makes the ad ineligible. */
  spend(id: bigint, amount: number): void {
    this.checkWritable();
    const row = this.rows.get(id);
    if (row < 0 || this.live[row] !== 1) return;
    const adBefore = this.budgetLeft[row]! > 0;
    this.budgetLeft[row]! -= amount;
    const code = this.campaign[row]!;
    const campaignBefore = this.campaignBudgets[code]! > 0;
    if (this.campaignBudgets[code] !== Infinity) this.campaignBudgets[code]! -= amount;
    if (campaignBefore !== this.campaignBudgets[code]! > 0) this.notify(this.campaignAds(code));
    else if (adBefore !== this.budgetLeft[row]! > 0) this.notify([id]);
  }

  /** Whether the ad may be served for a user in `geo` under `filter`. */
  eligible(id: bigint, geo: string | undefined, filter: CompiledFilter | undefined): boolean {
    const row = this.rows.get(id);
    if (row < 0 || this.live[row] !== 1 || this.active[row] !== 1 || !(this.budgetLeft[row]! > 0)) return false;
    if (!(this.campaignBudgets[this.campaign[row]!]! > 0)) return false;
    const set = this.geoSet[row]!;
    if (set !== 0 && (geo === undefined || !this.geoSetLists[set]!.includes(geo))) return false;
    if (filter) {
      if (filter.categories && !filter.categories.has(this.categories.names[this.category[row]!]!)) return false;
      if (filter.excludeAdvertisers?.has(this.advertisers.names[this.advertiser[row]!]!)) return false;
      if (filter.excludeAds?.has(id)) return false;
    }
    return true;
  }

  /** The category of an ad, or undefined. */
  categoryOf(id: bigint): string | undefined {
    const row = this.rows.get(id);
    return row < 0 || this.live[row] !== 1 ? undefined : this.categories.names[this.category[row]!];
  }

  /** The title of an ad, or undefined. */
  titleOf(id: bigint): string | undefined {
    const row = this.rows.get(id);
    return row < 0 || this.live[row] !== 1 ? undefined : this.title(row);
  }

  /**
   * The native attributes of each ad as it is (or, for inputs, as it would be after upsert(input)),
   * 6 values per ad: active, budget state, advertiser, campaign, category and geo-set codes.
   */
  nativeAttributes(ads: readonly (bigint | AdInput)[], out = new Uint32Array(ads.length * nativeFields)): Uint32Array {
    ads.forEach((ad, i) => {
      const input = typeof ad === 'bigint' ? undefined : ad;
      const id = typeof ad === 'bigint' ? ad : ad.id;
      const found = this.rows.get(id);
      const row = found >= 0 && this.live[found] === 1 ? found : -1;
      const o = i * nativeFields;
      const active = input?.active ?? (row >= 0 ? this.active[row] === 1 : true);
      const budget = input?.budgetLeft ?? (row >= 0 ? this.budgetLeft[row]! : Infinity);
      const campaign = input?.campaignId !== undefined ? this.internCampaign(input.campaignId) : row >= 0 ? this.campaign[row]! : 0;
      out[o] = active ? 1 : 0;
      out[o + 1] = budget > 0 && this.campaignBudgets[campaign]! > 0 ? budgetAvailable : budgetExhausted;
      out[o + 2] = input?.advertiserId !== undefined ? this.intern(this.advertisers, input.advertiserId) : row >= 0 ? this.advertiser[row]! : 0;
      out[o + 3] = campaign;
      out[o + 4] = input?.category !== undefined ? this.intern(this.categories, input.category) : row >= 0 ? this.category[row]! : 0;
      out[o + 5] = input?.geos !== undefined ? this.internGeos(input.geos) : row >= 0 ? this.geoSet[row]! : 0;
    });
    return out;
  }

  /** The native filter description of a request's eligibility (what AdIndex.filter() takes). */
  nativeFilter(geo: string | undefined, filter: { readonly categories?: readonly string[]; readonly excludeAdvertisers?: readonly string[] } | undefined) {
    const spec: { active: true; budget: ('available' | 'limited')[]; geos: number[]; categories?: number[]; excludeAdvertisers?: number[] } = {
      active: true,
      budget: ['available', 'limited'],
      geos: geo === undefined ? [0] : [0, ...(this.setsByGeo.get(geo) ?? [])],
    };
    if (filter?.categories) {
      const codes = filter.categories.map((c) => this.categories.code(c)).filter((c): c is number => c !== undefined);
      spec.categories = codes.length > 0 ? codes : [noCode];
    }
    if (filter?.excludeAdvertisers) {
      spec.excludeAdvertisers = filter.excludeAdvertisers.map((a) => this.advertisers.code(a)).filter((c): c is number => c !== undefined);
    }
    return spec;
  }

  *[Symbol.iterator](): IterableIterator<AdAttributes> {
    for (let row = 0; row < this.used; row++) if (this.live[row] === 1) yield this.build(row);
  }

  private write(input: AdInput): number {
    let row = this.rows.get(input.id);
    const isNew = row < 0 || this.live[row] !== 1;
    if (row < 0) {
      row = this.used++;
      this.ensure(this.used);
      this.rows.set(input.id, row);
      this.ids[row] = input.id;
    }
    if (isNew) {
      this.live[row] = 1;
      this.liveCount++;
      this.active[row] = 1;
      this.budgetLeft[row] = Infinity;
      this.advertiser[row] = 0;
      this.campaign[row] = 0;
      this.category[row] = 0;
      this.geoSet[row] = 0;
      this.titleLength[row] = -1;
    }
    if (input.advertiserId !== undefined) this.advertiser[row] = this.intern(this.advertisers, input.advertiserId);
    if (input.campaignId !== undefined) this.campaign[row] = this.internCampaign(input.campaignId);
    if (input.category !== undefined) this.category[row] = this.intern(this.categories, input.category);
    if (input.geos !== undefined) this.geoSet[row] = this.internGeos(input.geos);
    if (input.active !== undefined) this.active[row] = input.active ? 1 : 0;
    if (input.budgetLeft !== undefined) this.budgetLeft[row] = input.budgetLeft;
    if (input.title !== undefined) this.setTitle(row, input.title);
    return row;
  }

  private build(row: number): AdAttributes {
    const ad: AdAttributes = {
      id: this.ids[row]!,
      advertiserId: this.advertisers.names[this.advertiser[row]!]!,
      campaignId: this.campaigns.names[this.campaign[row]!]!,
      category: this.categories.names[this.category[row]!]!,
      geos: [...this.geoSetLists[this.geoSet[row]!]!],
      active: this.active[row] === 1,
      budgetLeft: this.budgetLeft[row]!,
      title: this.title(row),
    };
    return ad;
  }

  private title(row: number): string | undefined {
    const length = this.titleLength[row]!;
    if (length < 0) return undefined;
    const at = this.titleAt[row]!;
    return decoder.decode(this.titleBytes.subarray(at, at + length));
  }

  /** Titles are appended to one byte arena; a replaced title's bytes are not reclaimed. */
  private setTitle(row: number, title: string): void {
    const bytes = encoder.encode(title);
    this.titleBytes = grown(this.titleBytes, this.titleEnd + bytes.length);
    this.titleBytes.set(bytes, this.titleEnd);
    this.titleAt[row] = this.titleEnd;
    this.titleLength[row] = bytes.length;
    this.titleEnd += bytes.length;
  }

  private intern(dictionary: Dictionary, name: string): number {
    const before = dictionary.names.length;
    const code = dictionary.intern(name);
    if (dictionary.names.length !== before) this.dictionaryVersion++;
    return code;
  }

  /** The campaign's code (a new one for a new name). */
  internCampaign(name: string): number {
    const code = this.intern(this.campaigns, name);
    if (code >= this.campaignBudgets.length) this.campaignBudgets = grown(this.campaignBudgets, code + 1, Infinity);
    return code;
  }

  private internGeos(geos: readonly string[]): number {
    if (geos.length === 0) return 0;
    const before = this.geoSets.names.length;
    // JSON: unambiguous whatever the geo names hold (a join on a separator is not).
    const code = this.intern(this.geoSets, JSON.stringify(geos));
    if (this.geoSets.names.length !== before) {
      const list = [...geos];
      this.geoSetLists.push(list);
      for (const geo of new Set(list)) {
        const sets = this.setsByGeo.get(geo) ?? [];
        sets.push(code);
        this.setsByGeo.set(geo, sets);
      }
    }
    return code;
  }

  private campaignAds(code: number): bigint[] {
    const out: bigint[] = [];
    for (let row = 0; row < this.used; row++) if (this.campaign[row] === code && this.live[row] === 1) out.push(this.ids[row]!);
    return out;
  }

  private ensure(rows: number): void {
    if (rows <= this.ids.length) return;
    this.ids = grown(this.ids, rows);
    this.live = grown(this.live, rows);
    this.active = grown(this.active, rows);
    this.budgetLeft = grown(this.budgetLeft, rows);
    this.advertiser = grown(this.advertiser, rows);
    this.campaign = grown(this.campaign, rows);
    this.category = grown(this.category, rows);
    this.geoSet = grown(this.geoSet, rows);
    this.titleAt = grown(this.titleAt, rows);
    this.titleLength = grown(this.titleLength, rows);
    this.placed = grown(this.placed, rows);
  }

  private checkWritable(): void {
    if (this.owner) {
      throw new CorpusError('ERR_STORE_OWNED', `This AdStore belongs to ${this.owner}: write through it (upsertAds, removeAds, spend, setCampaignBudget) so that the change reaches the catalog and the indexes`);
    }
  }

  private notify(ids: readonly bigint[]): void {
    if (ids.length === 0) return;
    for (const listener of this.listeners) listener(ids);
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
