/**
 * The source of truth for the ads corpus: every acknowledged write is a change in a catalog, under
 * a monotonically increasing sequence. The indexes, the attribute store and the filters are
 * derived state, rebuilt from a snapshot plus the changes after its sequence.
 *
 * `SqliteCatalog` is the single-process implementation; a sharded deployment plays the same role
 * with a replicated log (each shard reading its partition through this interface).
 */

/** An ad as the catalog holds it: full attributes (never a partial update) and its vectors. */
export interface CatalogAd {
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

/** One write to one ad. `embedding` / `content`: a vector sets it, null clears it, undefined keeps it. */
export type AdChange =
  | { kind: 'upsert'; ad: CatalogAd; embedding?: Float32Array | null; content?: Float32Array | null }
  | { kind: 'remove'; id: bigint };

export interface CampaignChange {
  campaignId: string;
  budget: number;
}

/** An interned name: the codes the indexes store are these, so they must survive restarts. */
export interface NameEntry {
  dictionary: 'advertiser' | 'campaign' | 'category' | 'geoset';
  code: number;
  name: string;
}

/** A batch of changes committed together: all or nothing. */
export interface CatalogBatch {
  ads?: readonly AdChange[];
  campaigns?: readonly CampaignChange[];
  /** Names first interned by this batch. */
  names?: readonly NameEntry[];
  /**
   * Where the write was ordered, for a corpus following a stream (a cluster router's catalog
   * stream): its sequence there, recorded with the batch so that a restart resumes after it.
   */
  origin?: number;
}

/** An ad changed after some sequence, as it is now. */
export interface ChangedAd {
  id: bigint;
  seq: number;
  removed: boolean;
  ad: CatalogAd | undefined;
  embedding: Float32Array | undefined;
  content: Float32Array | undefined;
  /** The sequence at which the embedding (content vector) last changed: replay re-adds a vector only when it changed after the snapshot. */
  embeddingSeq: number;
  contentSeq: number;
}

export interface PresentAd {
  ad: CatalogAd;
  hasEmbedding: boolean;
  hasContent: boolean;
}

/** What a catalog can say in O(1) (it is read at every metrics scrape). */
export interface CatalogStats {
  head: number;
  /** Bytes of the catalog on disk (0 in memory). */
  bytes: number;
}

export interface AdCatalog {
  /** True when a commit survives the process being killed. */
  readonly durable: boolean;
  /** The sequence of the last committed batch (0 before the first). */
  head(): number;
  /** Commits a batch durably; returns its sequence. Throws and writes nothing on failure. */
  commit(batch: CatalogBatch): number;
  /** Every interned name, in code order per dictionary. */
  names(): NameEntry[];
  /** Every campaign budget that was set, with the sequence of its last change. */
  campaigns(): (CampaignChange & { seq: number })[];
  /** Every present ad's attributes and which vectors it has (not the vectors), `batchSize` at a time. */
  presentAds(batchSize?: number): Iterable<PresentAd[]>;
  /** Ads changed after `since` (removals included), in sequence order, `batchSize` at a time. */
  changesSince(since: number, batchSize?: number): Iterable<ChangedAd[]>;
  /** Up to `n` embeddings of present ads, row-major (a training sample for IVF kinds). */
  sample(n: number, dim: number): Float32Array;
  /** The origin of the last batch committed with one, or of the last refusal recorded (0: none). */
  origin(): number;
  /** Records that the write at `origin` was refused (nothing of it committed): a restart resumes after it, and says so. */
  recordRefusal(origin: number): void;
  /** Whether the write at `origin` was refused (recordRefusal). */
  wasRefused(origin: number): boolean;
  /** Deletes tombstones at or below `seq` (every retained snapshot already includes them). */
  dropTombstones(seq: number): number;
  stats(): CatalogStats;
  close(): void;
}
