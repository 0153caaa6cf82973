/**
 * The ads corpus with one source of truth. Every write is committed to the catalog first (durable
 * when the catalog is), then applied to the derived state: the attribute store (interned names,
 * titles) and two native indexes, behavioural embeddings and content embeddings of cold-start ads.
 * A write resolves once searches can see it. Writes run one at a time, in sequence order.
 *
 * On open, the newest valid snapshot of the indexes is loaded and the changes after its sequence
 * are replayed from the catalog; a damaged or mismatched snapshot falls back to the previous one,
 * then to a full rebuild, with the reason logged.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { AdIndex, type AdIndexOptions, type ScanPrecision } from '../ad-index';
import type { Metric } from '../metric';
import { AdStore, type AdInput } from './ad-store';
import type { AdCatalog, AdChange, CampaignChange, ChangedAd } from './catalog';
import { CorpusError } from './errors';
import { MemoryCatalog } from './memory-catalog';
import { SqliteCatalog } from './sqlite-catalog';
import { takeLock, type DataDirLock } from './data-dir-lock';
import { SnapshotStore, type Expected } from './snapshots';

/** Index settings other than dim and metric (kind, nlist, efSearch ...). */
export type IndexSettings = Omit<AdIndexOptions, 'dim' | 'metric' | 'threads'>;

export interface AdCorpusOptions {
  /** Dimension of the behavioural embeddings. */
  dim: number;
  metric?: Metric;
  /** The behavioural index (default: exact, kind 'flat'). */
  index?: IndexSettings;
  /** Dimension of the content (text) embeddings of cold-start ads; 0 for none (default 256). */
  contentDim?: number;
  /** The content index's scan precision (it is exact, kind 'flat'): AdIndexOptions.precision (default 'fp32'). */
  contentPrecision?: ScanPrecision;
  /** Threads per native operation (default 0: every core). */
  threads?: number;
  /** Where the catalog and snapshots live; absent: memory only (nothing survives the process). */
  dataDir?: string;
  /** 'power' (default): every commit is fsynced. 'process': survives a killed process, not a power cut. */
  durability?: 'power' | 'process';
  /** Snapshots kept (default 2): a damaged newest one falls back to the one before. */
  keepSnapshots?: number;
  /** Hears what recovery did (snapshot loaded, changes replayed, snapshots passed over). */
  log?: (line: string) => void;
  /**
   * Set when the behavioural embeddings live elsewhere (a cluster's shards), naming where (for
   * errors): the corpus then keeps no behavioural index (`behavioural` throws), and its catalog
   * records which ads have an embedding, not the vectors. Attributes, names, titles and the
   * content index are kept as usual.
   */
  embeddingsIn?: string;
}

/**
 * Where a corpus whose writes are ordered elsewhere sends them (a cluster router's catalog stream,
 * lib/cluster): `append` resolves with the write's sequence there once this corpus has applied it
 * (through `applyOrdered`, in that order, like every other corpus following the same stream).
 */
export interface WriteOrderer {
  append(write: CorpusWrite): Promise<number>;
}

/** One write: all of it is applied, or none. */
export interface CorpusWrite {
  /** Ads to add or update; attributes not given keep their value. */
  upserts?: readonly { ad: AdInput; embedding?: Float32Array; content?: Float32Array | null }[];
  removes?: readonly bigint[];
  campaigns?: readonly CampaignChange[];
  /** Spend charged to each ad and its campaign (either running out makes the ad ineligible). */
  spends?: readonly { id: bigint; amount: number }[];
}

export interface CorpusStats {
  ads: number;
  /** Sequence of the last committed write, and of the last one applied to the indexes. */
  head: number;
  applied: number;
  /** Sequence included in the newest snapshot (0: none), its age, and the changes a restart replays. */
  snapshotSeq: number;
  snapshotAgeSeconds: number | undefined;
  replayLag: number;
  catalogBytes: number;
  durable: boolean;
  /** Why the corpus stopped taking writes (a committed write could not be applied), if it did. */
  failure: string | undefined;
}

const names = { behavioural: 'behavioural', content: 'content' } as const;
const noVector = new Float32Array(0);
/** The catalog's file in a corpus's dataDir. */
export const catalogFile = 'catalog.sqlite';

export class AdCorpus {
  readonly dim: number;
  readonly metric: Metric;
  readonly store: AdStore;
  readonly content: AdIndex | undefined;
  readonly catalog: AdCatalog;
  private readonly snapshots: SnapshotStore | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private appliedSeq: number;
  private snapshotSeq = 0;
  private snapshotAt: Date | undefined;
  private failure_: Error | undefined;
  private closed = false;
  private orderer: WriteOrderer | undefined;
  /** Where the behavioural embeddings live when this corpus keeps none (AdCorpusOptions.embeddingsIn). */
  private readonly embeddingsIn: string | undefined;

  private constructor(
    options: AdCorpusOptions,
    catalog: AdCatalog,
    store: AdStore,
    private readonly localBehavioural: AdIndex | undefined,
    content: AdIndex | undefined,
    snapshots?: SnapshotStore,
    private readonly lock?: DataDirLock,
  ) {
    this.dim = options.dim;
    this.metric = options.metric ?? 'ip';
    this.catalog = catalog;
    this.store = store;
    this.embeddingsIn = options.embeddingsIn;
    this.content = content;
    this.snapshots = snapshots;
    this.appliedSeq = catalog.head();
    store.own('an AdCorpus');
  }

  /** A corpus in memory only, ready at once. */
  static inMemory(options: Omit<AdCorpusOptions, 'dataDir' | 'durability' | 'keepSnapshots' | 'log'>): AdCorpus {
    const { behavioural, content } = freshIndexes(options);
    return new AdCorpus(options, new MemoryCatalog(), new AdStore(), behavioural, content);
  }

  /** Opens the corpus in `options.dataDir` (created if absent): snapshot, then replay. */
  static async open(options: AdCorpusOptions): Promise<AdCorpus> {
    if (options.dataDir === undefined) return AdCorpus.inMemory(options);
    const log = options.log ?? (() => undefined);
    mkdirSync(options.dataDir, { recursive: true });
    const lock = takeLock(options.dataDir);
    let catalog: SqliteCatalog;
    try {
      catalog = new SqliteCatalog(join(options.dataDir, catalogFile), { durability: options.durability });
    } catch (error) {
      lock.release();
      throw error;
    }
    try {
      checkShape(catalog, options);
      const started = performance.now();
      const store = new AdStore();
      store.importNames(catalog.names());
      loadStore(store, catalog);
      const snapshots = new SnapshotStore(join(options.dataDir, 'snapshots'), options.keepSnapshots);
      // A snapshot of another shape or precision is passed over: the indexes are then rebuilt from the catalog.
      const behaviouralShape = { dim: options.dim, metric: options.metric ?? 'ip', kind: options.index?.kind ?? 'flat', precision: options.index?.precision ?? 'fp32' };
      const expected = new Map<string, Expected>(options.embeddingsIn === undefined ? [[names.behavioural, behaviouralShape]] : []);
      const contentDim = options.contentDim ?? 256;
      if (contentDim > 0) expected.set(names.content, { dim: contentDim, metric: 'cosine', kind: 'flat', precision: options.contentPrecision ?? 'fp32' });
      const snapshot = await snapshots.loadNewest(expected, options.threads ?? 0, log);
      const fresh = snapshot ? undefined : freshIndexes(options);
      const behavioural = options.embeddingsIn !== undefined ? undefined : snapshot?.indexes.get(names.behavioural) ?? fresh!.behavioural;
      const content = snapshot ? snapshot.indexes.get(names.content) : fresh!.content;
      const corpus = new AdCorpus(options, catalog, store, behavioural, content, snapshots, lock);
      const since = snapshot?.seq ?? 0;
      if (snapshot) {
        corpus.snapshotSeq = snapshot.seq;
        corpus.snapshotAt = snapshot.createdAt;
      } else if (catalog.head() > 0) {
        log('no usable snapshot: rebuilding the indexes from the catalog');
        if (behavioural && !behavioural.isTrained) await behavioural.train(catalog.sample(50_000, options.dim));
      }
      const replayed = await corpus.replay(since);
      log(`corpus ready: ${store.size} ads, snapshot ${since || 'none'}, ${replayed} changes replayed to sequence ${catalog.head()} in ${Math.round(performance.now() - started)} ms`);
      return corpus;
    } catch (error) {
      catalog.close();
      lock.release();
      throw error;
    }
  }

  get size(): number {
    return this.store.size;
  }

  /** The behavioural index; a corpus whose embeddings live elsewhere (options.embeddingsIn) has none and throws. */
  get behavioural(): AdIndex {
    if (!this.localBehavioural) {
      throw new CorpusError('ERR_CORPUS_REMOTE', `This corpus keeps no behavioural index: its embeddings live in ${this.embeddingsIn}; search them there (a RemoteIndex)`);
    }
    return this.localBehavioural;
  }

  /** False for a corpus whose embeddings live elsewhere (options.embeddingsIn). */
  get hasLocalEmbeddings(): boolean {
    return this.localBehavioural !== undefined;
  }

  /** Why the corpus stopped taking writes (a committed write could not be applied), if it did. */
  get failure(): string | undefined {
    return this.failure_?.message;
  }

  /** The indexes by name, as snapshots store them. */
  get indexes(): ReadonlyMap<string, AdIndex> {
    const out = new Map<string, AdIndex>();
    if (this.localBehavioural) out.set(names.behavioural, this.localBehavioural);
    if (this.content) out.set(names.content, this.content);
    return out;
  }

  /**
   * Commits `write` to the catalog and applies it to the indexes; resolves with its sequence once
   * searches see it. Rejects, changing nothing, when the catalog refuses it. With an orderer
   * (orderWritesThrough), the write goes there and the sequence is the orderer's.
   */
  write(write: CorpusWrite): Promise<number> {
    if (this.orderer) return this.orderer.append(write);
    return this.applyOrdered(write);
  }

  /**
   * Sends every later write() to `orderer`, which applies it here (applyOrdered) in its order:
   * corpora following one order intern the same names to the same codes.
   */
  orderWritesThrough(orderer: WriteOrderer): void {
    this.orderer = orderer;
  }

  /**
   * Commits and applies a write that its orderer has placed (or any write, for a corpus without
   * one); resolves with the local sequence. `origin`, the write's sequence in the orderer's stream,
   * is committed with it (orderedThrough).
   */
  applyOrdered(write: CorpusWrite, origin?: number): Promise<number> {
    return this.enqueue(() => this.commitAndApply(write, origin));
  }

  /** The stream sequence of the last write applied or refused with an origin: a follower resumes after it (0: none). */
  get orderedThrough(): number {
    return this.catalog.origin();
  }

  /** Records that the stream's write at `origin` was refused here, so that a restart skips it and wasRefused() says so. */
  recordRefusal(origin: number): Promise<void> {
    return this.enqueue(async () => this.catalog.recordRefusal(origin));
  }

  /**
   * Copies the catalog (on disk: a corpus opened with a dataDir) to `path`, consistently while
   * writes go on; resolves with the stream sequence the copy includes (its origin). A corpus opened
   * on such a copy (as `<dataDir>/catalog.sqlite`) resumes after that sequence.
   */
  async backupCatalog(path: string): Promise<{ origin: number; head: number }> {
    if (!(this.catalog instanceof SqliteCatalog)) throw new CorpusError('ERR_CATALOG', 'Expected a corpus with a dataDir to copy its catalog: this one lives in memory');
    return this.catalog.backup(path);
  }

  /** Whether the stream's write at `origin` was refused (recordRefusal). */
  wasRefused(origin: number): boolean {
    return this.catalog.wasRefused(origin);
  }

  /** Writes a snapshot of the indexes at the current sequence (writes wait meanwhile); undefined without a data dir. */
  snapshot(): Promise<number | undefined> {
    return this.enqueue(async () => {
      if (!this.snapshots) return undefined;
      const seq = this.appliedSeq;
      if (seq === this.snapshotSeq && this.snapshotAt) return seq;
      const kept = await this.snapshots.save(seq, this.indexes);
      this.snapshotSeq = seq;
      this.snapshotAt = new Date();
      // Tombstones every kept snapshot includes are needed by no replay.
      this.catalog.dropTombstones(Math.min(...kept));
      return seq;
    });
  }

  /** Compacts each index whose share of dead slots is at least `deadShare`; returns the names compacted. */
  async compact(deadShare = 0.2): Promise<string[]> {
    const done: string[] = [];
    for (const [name, index] of this.indexes) {
      const s = await index.stats();
      if (s.slots > 0 && s.deleted / s.slots >= deadShare) {
        await index.compact();
        done.push(name);
      }
    }
    return done;
  }

  stats(): CorpusStats {
    const c = this.catalog.stats();  // O(1): read at every metrics scrape
    return {
      ads: this.store.size,
      head: this.catalog.head(),
      applied: this.appliedSeq,
      snapshotSeq: this.snapshotSeq,
      snapshotAgeSeconds: this.snapshotAt ? (Date.now() - this.snapshotAt.getTime()) / 1000 : undefined,
      replayLag: this.catalog.head() - this.snapshotSeq,
      catalogBytes: c.bytes,
      durable: this.catalog.durable,
      failure: this.failure,
    };
  }

  /** Waits for queued writes, then closes the catalog and frees the indexes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => undefined);
    this.catalog.close();
    for (const index of this.indexes.values()) index.close();
    this.lock?.release();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = () => {
      if (this.closed) throw new CorpusError('ERR_CORPUS_FAILED', 'This corpus is closed: open it again to write');
      if (this.failure_) {
        throw new CorpusError('ERR_CORPUS_FAILED', `This corpus stopped taking writes after a committed write could not be applied (${this.failure_.message}); reopen it to rebuild the indexes from the catalog`);
      }
      return task();
    };
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => undefined);
    return done;
  }

  private async commitAndApply(write: CorpusWrite, origin?: number): Promise<number> {
    const store = this.store;
    const changes: AdChange[] = [];
    const removed = new Set(write.removes ?? []);
    // Spends become absolute budgets, resolved against the state every earlier write left.
    const budgets = new Map<bigint, number>();
    const campaignBudgets = new Map<string, number>();
    for (const c of write.campaigns ?? []) campaignBudgets.set(c.campaignId, c.budget);
    for (const { id, amount } of write.spends ?? []) {
      const ad = store.get(id);
      if (!ad || removed.has(id)) continue;
      budgets.set(id, (budgets.get(id) ?? ad.budgetLeft) - amount);
      const campaign = campaignBudgets.get(ad.campaignId) ?? store.campaignBudget(ad.campaignId);
      if (campaign !== Infinity) campaignBudgets.set(ad.campaignId, campaign - amount);
    }
    const upserts = new Map<bigint, { ad: AdInput; embedding?: Float32Array; content?: Float32Array | null }>();
    for (const u of write.upserts ?? []) {
      const before = upserts.get(u.ad.id);
      upserts.set(u.ad.id, before ? { ad: { ...before.ad, ...u.ad }, embedding: u.embedding ?? before.embedding, content: u.content !== undefined ? u.content : before.content } : u);
    }
    for (const [id, budgetLeft] of budgets) if (!upserts.has(id)) upserts.set(id, { ad: { id, budgetLeft } });
    for (const id of removed) upserts.delete(id);
    store.asOwner(() => {
      for (const u of upserts.values()) {
        const ad = store.resolved({ ...u.ad, ...(budgets.has(u.ad.id) ? { budgetLeft: budgets.get(u.ad.id) } : {}) });
        store.internNames(ad);
        changes.push({ kind: 'upsert', ad, embedding: u.embedding, content: u.content });
      }
      for (const name of campaignBudgets.keys()) store.internCampaign(name);
    });
    for (const id of removed) changes.push({ kind: 'remove', id });
    const campaigns = [...campaignBudgets].map(([campaignId, budget]) => ({ campaignId, budget }));
    // Without a behavioural index the catalog records that an ad has an embedding (an empty vector), not the vector.
    const committed = this.localBehavioural ? changes : changes.map((c) => (c.kind === 'upsert' && c.embedding ? { ...c, embedding: noVector } : c));
    const seq = this.catalog.commit({ ads: committed, campaigns, names: store.unpersistedNames(), ...(origin !== undefined ? { origin } : {}) });
    store.markNamesPersisted();
    try {
      await this.apply(changes, campaigns);
    } catch (error) {
      this.failure_ = error as Error;
      throw new CorpusError('ERR_CORPUS_FAILED', `Write ${seq} is committed to the catalog but could not be applied to the indexes (${(error as Error).message}); the corpus takes no more writes: reopen it to rebuild from the catalog`);
    }
    this.appliedSeq = seq;
    return seq;
  }

  /** Applies committed changes to the store and the indexes. */
  private async apply(changes: readonly AdChange[], campaigns: readonly CampaignChange[]): Promise<void> {
    const store = this.store;
    const touched = new Set<bigint>();
    const listen = (ids: readonly bigint[]) => ids.forEach((id) => touched.add(id));
    store.onChange(listen);
    const embedded: { id: bigint; vector: Float32Array }[] = [];
    const contents: { id: bigint; vector: Float32Array }[] = [];
    const gone: bigint[] = [];
    const leftContent: bigint[] = [];
    try {
      store.asOwner(() => {
        for (const c of campaigns) store.setCampaignBudget(c.campaignId, c.budget);
        for (const change of changes) {
          if (change.kind === 'remove') {
            if (store.remove(change.id)) gone.push(change.id);
            continue;
          }
          const wasEmbedded = store.hasEmbedding(change.ad.id);
          const hadContent = store.hasContent(change.ad.id);
          store.upsert(change.ad);
          if (change.embedding) embedded.push({ id: change.ad.id, vector: change.embedding });
          if (change.content) contents.push({ id: change.ad.id, vector: change.content });
          else if (change.content === null) leftContent.push(change.ad.id);
          store.setPlacement(change.ad.id, wasEmbedded || !!change.embedding, !!change.content || (change.content === undefined && hadContent));
        }
      });
    } finally {
      store.offChange(listen);
    }
    if (this.localBehavioural) await this.upsertVectors(this.localBehavioural, embedded);
    if (this.content) await this.upsertVectors(this.content, contents);
    if (gone.length > 0) {
      const ids = BigInt64Array.from(gone);
      await this.localBehavioural?.remove(ids);
      await this.content?.remove(ids);
    }
    if (leftContent.length > 0) await this.content?.remove(BigInt64Array.from(leftContent));
    // Attributes only for the rest of the ads whose eligibility may have changed.
    const fresh = new Set([...embedded, ...contents].map((e) => e.id));
    const rest = [...touched].filter((id) => !fresh.has(id) && store.has(id));
    if (rest.length > 0) {
      const ids = BigInt64Array.from(rest);
      const attributes = store.nativeAttributes(rest);
      await this.localBehavioural?.setAttributes(ids, attributes);
      await this.content?.setAttributes(ids, attributes);
    }
  }

  private async upsertVectors(index: AdIndex, rows: readonly { id: bigint; vector: Float32Array }[]): Promise<void> {
    if (rows.length === 0) return;
    const dim = index === this.localBehavioural ? this.dim : rows[0]!.vector.length;
    const vectors = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => vectors.set(r.vector, i * dim));
    const ids = rows.map((r) => r.id);
    await index.upsert(BigInt64Array.from(ids), vectors, this.store.nativeAttributes(ids));
  }

  /** Brings the indexes from snapshot sequence `since` up to the catalog's head; returns the changes replayed. */
  private async replay(since: number): Promise<number> {
    let count = 0;
    const store = this.store;
    for (const batch of this.catalog.changesSince(since)) {
      count += batch.length;
      const removed = batch.filter((c) => c.removed).map((c) => c.id);
      const present = batch.filter((c) => !c.removed);
      if (this.localBehavioural) await this.replayIndex(this.localBehavioural, present, since, (c) => c.embedding, (c) => c.embeddingSeq, removed);
      if (this.content) await this.replayIndex(this.content, present, since, (c) => c.content, (c) => c.contentSeq, removed);
    }
    // Campaign budgets changed after the snapshot change the eligibility of all their ads.
    const campaignAds = this.catalog.campaigns().filter((c) => c.seq > since).flatMap((c) => store.adsOfCampaign(c.campaignId));
    if (campaignAds.length > 0) {
      const ids = BigInt64Array.from(campaignAds);
      const attributes = store.nativeAttributes(campaignAds);
      await this.localBehavioural?.setAttributes(ids, attributes);
      await this.content?.setAttributes(ids, attributes);
    }
    this.appliedSeq = this.catalog.head();
    return count;
  }

  private async replayIndex(
    index: AdIndex,
    present: readonly ChangedAd[],
    since: number,
    vectorOf: (c: ChangedAd) => Float32Array | undefined,
    seqOf: (c: ChangedAd) => number,
    removed: readonly bigint[],
  ): Promise<void> {
    const added = present.filter((c) => vectorOf(c) && seqOf(c) > since);
    const cleared = present.filter((c) => !vectorOf(c) && seqOf(c) > since).map((c) => c.id);
    const kept = present.filter((c) => vectorOf(c) && seqOf(c) <= since).map((c) => c.id);
    await this.upsertVectors(index, added.map((c) => ({ id: c.id, vector: vectorOf(c)! })));
    const gone = [...removed, ...cleared];
    if (gone.length > 0) await index.remove(BigInt64Array.from(gone));
    if (kept.length > 0) await index.setAttributes(BigInt64Array.from(kept), this.store.nativeAttributes(kept));
  }
}

/** New empty indexes: no behavioural one when the embeddings live elsewhere. */
function freshIndexes(options: Pick<AdCorpusOptions, 'dim' | 'metric' | 'index' | 'contentDim' | 'contentPrecision' | 'threads' | 'embeddingsIn'>): { behavioural: AdIndex | undefined; content: AdIndex | undefined } {
  const behavioural = options.embeddingsIn === undefined ? new AdIndex({ ...options.index, dim: options.dim, metric: options.metric ?? 'ip', threads: options.threads ?? 0 }) : undefined;
  return { behavioural, content: freshContentIndex(options) };
}

function freshContentIndex(options: Pick<AdCorpusOptions, 'contentDim' | 'contentPrecision' | 'threads'>): AdIndex | undefined {
  const contentDim = options.contentDim ?? 256;
  return contentDim > 0 ? new AdIndex({ dim: contentDim, metric: 'cosine', threads: options.threads ?? 0, precision: options.contentPrecision }) : undefined;
}

/** The dimensions a catalog was created with must match the options (vectors cannot be reshaped). */
function checkShape(catalog: SqliteCatalog, options: AdCorpusOptions): void {
  const shape = JSON.stringify({ dim: options.dim, contentDim: options.contentDim ?? 256 });
  const recorded = catalog.meta('shape');
  if (recorded === undefined) catalog.setMeta('shape', shape);
  else if (recorded !== shape) {
    throw new CorpusError('ERR_CATALOG', `The catalog at ${catalog.path} holds vectors of ${recorded} but the corpus is configured with ${shape}: use another dataDir or the same dimensions`);
  }
}

/** Fills an empty store with every present ad's attributes and the campaign budgets. */
function loadStore(store: AdStore, catalog: AdCatalog): void {
  store.asOwner(() => {
    for (const c of catalog.campaigns()) store.setCampaignBudget(c.campaignId, c.budget);
    for (const batch of catalog.presentAds()) {
      for (const p of batch) {
        store.upsert(p.ad);
        store.setPlacement(p.ad.id, p.hasEmbedding, p.hasContent);
      }
    }
  });
}
