/**
 * A synthetic ads marketplace with a hidden ground truth. Categories are directions in a latent
 * space; ads sit near their category, users hold a long-term mix of categories and a short-term
 * session interest that drifts. What the engine sees is noisy: a learned (noisy) behavioural
 * embedding per ad, none at all for cold-start ads (only their title), a noisy user embedding,
 * and the recent items of the session. The truth decides clicks and conversions.
 */
import type { AdUpsert } from '../orchestration/engine';
import { normal, seededRandom, type Random } from '../orchestration/random';

export const categoryWords: Record<string, string[]> = {
  shoes: ['running', 'trail', 'sneaker', 'leather', 'boots', 'heel'],
  travel: ['flight', 'hotel', 'beach', 'city', 'weekend', 'cruise'],
  phones: ['smartphone', 'android', 'battery', 'camera', 'screen', 'charger'],
  books: ['novel', 'thriller', 'paperback', 'author', 'poetry', 'ebook'],
  fitness: ['gym', 'yoga', 'protein', 'dumbbell', 'treadmill', 'workout'],
  gaming: ['console', 'controller', 'arcade', 'rpg', 'shooter', 'headset'],
  kitchen: ['knife', 'blender', 'coffee', 'pan', 'oven', 'espresso'],
  garden: ['seeds', 'lawn', 'mower', 'tulip', 'compost', 'hose'],
  finance: ['savings', 'mortgage', 'credit', 'invest', 'pension', 'loan'],
  cars: ['sedan', 'suv', 'tires', 'hybrid', 'dealership', 'lease'],
  beauty: ['lipstick', 'serum', 'skincare', 'perfume', 'mascara', 'shampoo'],
  music: ['guitar', 'piano', 'vinyl', 'concert', 'speakers', 'festival'],
  pets: ['puppy', 'kitten', 'leash', 'aquarium', 'treats', 'litter'],
  fashion: ['dress', 'jacket', 'denim', 'scarf', 'handbag', 'sunglasses'],
  furniture: ['sofa', 'lamp', 'rug', 'mattress', 'curtains', 'shelf'],
  kids: ['toys', 'blocks', 'stroller', 'crib', 'puzzle', 'crayons'],
};
const fillers = ['new', 'best', 'deal', 'premium', 'classic', 'sale', 'pro', 'original', 'limited', 'essential'];
export const geos = ['us', 'de', 'fr', 'jp', 'br'];

export interface WorldOptions {
  seed?: number;
  ads?: number;
  users?: number;
  dim?: number;
  /** Share of ads with no behavioural embedding yet (default 0.1). */
  coldShare?: number;
  advertisers?: number;
}

/** How much long- and short-term interest drive engagement in each scenario (hidden). */
export const scenarioTruth: Record<string, { long: number; short: number; weight: number }> = {
  home: { long: 1.1, short: 0.1, weight: 0.5 },
  search: { long: 0.1, short: 1.3, weight: 0.3 },
  related: { long: 0.3, short: 1.0, weight: 0.2 },
};

export class Marketplace {
  readonly dim: number;
  readonly nAds: number;
  readonly nUsers: number;
  readonly categories = Object.keys(categoryWords);
  readonly centers: Float32Array;
  // Ads (row i is ad id i + 1).
  readonly adTrue: Float32Array;
  readonly adBehavioural: Float32Array;
  readonly adQuality: Float32Array;
  readonly adConversion: Float32Array;
  readonly adCategory: Uint16Array;
  readonly adCold: Uint8Array;
  readonly adBid: Float32Array;
  readonly adTitle: string[] = [];
  readonly adAdvertiser: Uint32Array;
  readonly adGeos: string[][] = [];
  readonly advertiserBudget: Float64Array;
  // Users.
  readonly userLong: Float32Array;
  readonly userPrefs: Float64Array;
  readonly userGeo: string[] = [];
  readonly userSession: Uint16Array;
  readonly userRecent: Uint16Array[] = [];
  private readonly random: Random;

  constructor(options: WorldOptions = {}) {
    const r = (this.random = seededRandom(options.seed ?? 1));
    const d = (this.dim = options.dim ?? 32);
    const n = (this.nAds = options.ads ?? 20_000);
    const u = (this.nUsers = options.users ?? 2_000);
    const nc = this.categories.length;
    const nAdvertisers = options.advertisers ?? 200;
    this.centers = new Float32Array(nc * d);
    for (let c = 0; c < nc; c++) this.unit(this.centers.subarray(c * d, (c + 1) * d), () => normal(r));

    this.adTrue = new Float32Array(n * d);
    this.adBehavioural = new Float32Array(n * d);
    this.adQuality = new Float32Array(n);
    this.adConversion = new Float32Array(n);
    this.adCategory = new Uint16Array(n);
    this.adCold = new Uint8Array(n);
    this.adBid = new Float32Array(n);
    this.adAdvertiser = new Uint32Array(n);
    this.advertiserBudget = new Float64Array(nAdvertisers).map(() => 50 + 400 * r());
    const spread = 0.55 / Math.sqrt(d);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(r() * nc);
      this.adCategory[i] = c;
      const cold = r() < (options.coldShare ?? 0.1);
      this.adCold[i] = cold ? 1 : 0;
      for (let j = 0; j < d; j++) {
        const t = this.centers[c * d + j]! + spread * normal(r);
        this.adTrue[i * d + j] = t;
        // The learned embedding of a known ad: the truth seen through noise.
        this.adBehavioural[i * d + j] = cold ? 0 : t + 0.5 * spread * normal(r);
      }
      // Cold ads are new and fresh: a little better on average, which makes finding them pay.
      this.adQuality[i] = 0.25 * normal(r) + (cold ? 0.25 : 0);
      this.adConversion[i] = 0.8 * normal(r);
      this.adBid[i] = 0.2 + 1.8 * r();
      this.adAdvertiser[i] = Math.floor(r() * nAdvertisers);
      const words = categoryWords[this.categories[c]!]!;
      const pick = () => words[Math.floor(r() * words.length)]!;
      this.adTitle.push(`${pick()} ${pick()} ${fillers[Math.floor(r() * fillers.length)]} ${pick()} by brand${this.adAdvertiser[i]}`);
      this.adGeos.push(r() < 0.2 ? [geos[Math.floor(r() * geos.length)]!] : []);
    }

    this.userLong = new Float32Array(u * d);
    this.userPrefs = new Float64Array(u * nc);
    this.userSession = new Uint16Array(u);
    for (let i = 0; i < u; i++) {
      // Two or three favourite categories.
      const favourites = 2 + Math.floor(r() * 2);
      for (let f = 0; f < favourites; f++) this.userPrefs[i * nc + Math.floor(r() * nc)]! += 0.5 + r();
      const v = this.userLong.subarray(i * d, (i + 1) * d);
      for (let c = 0; c < nc; c++) {
        const w = this.userPrefs[i * nc + c]!;
        if (w > 0) for (let j = 0; j < d; j++) v[j]! += w * this.centers[c * d + j]!;
      }
      for (let j = 0; j < d; j++) v[j]! += 0.3 * normal(r) / Math.sqrt(d);
      this.unit(v, (j) => v[j]!);
      this.userGeo.push(geos[Math.floor(r() * geos.length)]!);
      this.userSession[i] = this.drawCategory(i);
      this.userRecent.push(Uint16Array.from({ length: 5 }, () => this.userSession[i]!));
    }
  }

  /** A category from the user's preferences (70%) or any (30%): sessions wander. */
  drawCategory(user: number): number {
    const nc = this.categories.length;
    if (this.random() < 0.3) return Math.floor(this.random() * nc);
    let total = 0;
    for (let c = 0; c < nc; c++) total += this.userPrefs[user * nc + c]!;
    let x = this.random() * total;
    for (let c = 0; c < nc; c++) {
      x -= this.userPrefs[user * nc + c]!;
      if (x <= 0) return c;
    }
    return nc - 1;
  }

  /** Moves a user's session on: sometimes to a new topic; records the item just viewed. */
  step(user: number): void {
    if (this.random() < 0.25) this.userSession[user] = this.drawCategory(user);
    const recent = this.userRecent[user]!;
    recent.copyWithin(1, 0);
    recent[0] = this.random() < 0.85 ? this.userSession[user]! : Math.floor(this.random() * this.categories.length);
  }

  /**
   * Organic browsing, the engagement the simulator logs before the engine serves: the user's
   * session moves on (step), a page shows `page` ads, half from the session's category and half
   * from random categories (never cold ads: they are newer than the logs), and the truth decides
   * which the user clicks ('related' weights: mostly the session's interest, some long-term).
   * Returns the clicked ads' rows in page order. Sequential structure for a model to learn: a
   * session's category persists from page to page (75% a step) and drifts to the user's favourites.
   */
  browse(user: number, random: Random, page = 16): number[] {
    this.step(user);
    const query = this.truthQuery(user, 'related');
    const clicked: number[] = [];
    for (let i = 0; i < page; i++) {
      const row = this.pageSlot(user, i, random);
      if (row >= 0 && random() < pClick(this.relevance(query, row))) clicked.push(row);
    }
    return clicked;
  }

  /** The ads of a logged page (as browse picks them, without moving the session): known ad rows. */
  adPage(user: number, random: Random, page = 16): number[] {
    const rows: number[] = [];
    for (let i = 0; i < page; i++) {
      const row = this.pageSlot(user, i, random);
      if (row >= 0) rows.push(row);
    }
    return rows;
  }

  /** Slot i of a page: even slots from the session's category, odd ones from a random category; -1 when the pool is empty. */
  private pageSlot(user: number, i: number, random: Random): number {
    const known = (this.knownByCategory ??= this.knownAdsByCategory());
    const session = known[this.userSession[user]!]!;
    const pool = i % 2 === 0 && session.length > 0 ? session : known[Math.floor(random() * known.length)]!;
    return pool.length === 0 ? -1 : pool[Math.floor(random() * pool.length)]!;
  }

  private knownByCategory: Uint32Array[] | undefined;

  private knownAdsByCategory(): Uint32Array[] {
    const rows: number[][] = this.categories.map(() => []);
    for (let i = 0; i < this.nAds; i++) if (!this.adCold[i]) rows[this.adCategory[i]!]!.push(i);
    return rows.map((r) => Uint32Array.from(r));
  }

  /** The hidden short-term interest: the session's category direction. */
  shortTruth(user: number): Float32Array {
    const c = this.userSession[user]!;
    return this.centers.subarray(c * this.dim, (c + 1) * this.dim);
  }

  /** The engine's view of the user: noisy long-term embedding, recent items, text, geo. */

  /** Ad i as the engine ingests it (its behavioural embedding a view, or none when cold). */
  adUpsert(i: number): AdUpsert {
    const d = this.dim;
    return {
      id: BigInt(i + 1),
      advertiserId: `adv${this.adAdvertiser[i]}`,
      campaignId: `adv${this.adAdvertiser[i]}`,
      category: this.categories[this.adCategory[i]!]!,
      geos: this.adGeos[i]!,
      title: this.adTitle[i]!,
      embedding: this.adCold[i] ? undefined : this.adBehavioural.subarray(i * d, (i + 1) * d),
    };
  }
  features(user: number, scenario: string, random: Random) {
    const d = this.dim;
    const embedding = new Float32Array(d);
    for (let j = 0; j < d; j++) embedding[j] = this.userLong[user * d + j]! + (0.25 * normal(random)) / Math.sqrt(d);
    // Short-term: the mean of the recent items, each a noisy point of its category.
    const shortTerm = new Float32Array(d);
    const recent = this.userRecent[user]!;
    for (const c of recent) for (let j = 0; j < d; j++) shortTerm[j]! += (this.centers[c * d + j]! + (0.4 * normal(random)) / Math.sqrt(d)) / recent.length;
    const categories = [...new Set(Array.from(recent, (c) => this.categories[c]!))];
    const words = categoryWords[this.categories[this.userSession[user]!]!]!;
    const text = scenario === 'search'
      ? `${words[Math.floor(random() * words.length)]} ${words[Math.floor(random() * words.length)]}`
      : categories.slice(0, 2).join(' ');
    return { embedding, shortTerm, text, categories, geo: this.userGeo[user]! };
  }

  /** True relevance of ad row `i` for the user in the scenario (the truth's query . ad + quality). */
  relevance(query: Float32Array, i: number): number {
    let s = this.adQuality[i]!;
    const d = this.dim;
    for (let j = 0; j < d; j++) s += query[j]! * this.adTrue[i * d + j]!;
    return s;
  }

  /** The truth's query vector: long- and short-term interest weighted by the scenario. */
  truthQuery(user: number, scenario: string): Float32Array {
    const w = scenarioTruth[scenario]!;
    const d = this.dim;
    const q = new Float32Array(d);
    const short = this.shortTruth(user);
    for (let j = 0; j < d; j++) q[j] = w.long * this.userLong[user * d + j]! + w.short * short[j]!;
    return q;
  }

  private unit(v: Float32Array, value: (j: number) => number): void {
    let norm = 0;
    for (let j = 0; j < v.length; j++) {
      v[j] = value(j);
      norm += v[j]! * v[j]!;
    }
    const inv = 1 / Math.sqrt(norm || 1);
    for (let j = 0; j < v.length; j++) v[j]! *= inv;
  }
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** Click and conversion probabilities from true relevance (hidden from the engine). */
export const pClick = (relevance: number) => sigmoid(4 * relevance - 7.5);
export const pConversion = (relevance: number, propensity: number) => sigmoid(1.5 * relevance + propensity - 4);
