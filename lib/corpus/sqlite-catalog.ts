/**
 * The ads catalog in SQLite (better-sqlite3, WAL mode): one row per ad with its full attributes
 * and vectors, the sequence of its last change, and tombstones for removed ads; campaign budgets;
 * the interned names. A commit is one transaction, synchronous=FULL by default, so an acknowledged
 * write survives a killed process and a power cut ('process' trades the latter for speed).
 */
import Database from 'better-sqlite3';
import { CorpusError } from './errors';
import type { AdCatalog, CampaignChange, CatalogAd, CatalogBatch, CatalogStats, ChangedAd, NameEntry, PresentAd } from './catalog';

export interface SqliteCatalogOptions {
  /** 'power' (default): fsync at every commit. 'process': durable when the process dies, not the machine. */
  durability?: 'power' | 'process';
}

const schemaVersion = 1;

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ads (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  removed INTEGER NOT NULL,
  advertiser TEXT NOT NULL, campaign TEXT NOT NULL, category TEXT NOT NULL, geos TEXT NOT NULL,
  active INTEGER NOT NULL, budget_left REAL NOT NULL, title TEXT,
  embedding BLOB, embedding_seq INTEGER NOT NULL DEFAULT 0,
  content BLOB, content_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ads_by_seq ON ads (seq, id);
CREATE TABLE IF NOT EXISTS campaigns (name TEXT PRIMARY KEY, budget REAL NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS names (dictionary TEXT NOT NULL, code INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (dictionary, code));
CREATE TABLE IF NOT EXISTS refused (origin INTEGER PRIMARY KEY);
`;

interface AdRow {
  id: bigint;
  seq: bigint;
  removed: bigint;
  advertiser: string;
  campaign: string;
  category: string;
  geos: string;
  active: bigint;
  budget_left: number;
  title: string | null;
  embedding: Buffer | null;
  embedding_seq: bigint;
  content: Buffer | null;
  content_seq: bigint;
}

export class SqliteCatalog implements AdCatalog {
  readonly durable = true;
  readonly path: string;
  private readonly db: Database.Database;
  private headSeq: number;
  private originSeq: number;
  private readonly statements: ReturnType<typeof prepare>;

  constructor(path: string, options: SqliteCatalogOptions = {}) {
    this.path = path;
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.durability === 'process' ? 'NORMAL' : 'FULL'}`);
      this.db.exec(schema);
    } catch (error) {
      throw new CorpusError('ERR_CATALOG', `Could not open the ads catalog at ${path}: ${(error as Error).message}`);
    }
    this.db.defaultSafeIntegers(true);
    const version = this.meta('schema');
    if (version === undefined) this.setMeta('schema', String(schemaVersion));
    else if (Number(version) !== schemaVersion) {
      throw new CorpusError('ERR_CATALOG', `The ads catalog at ${path} has schema ${version}; this cangen reads schema ${schemaVersion}`);
    }
    this.headSeq = Number(this.meta('head') ?? 0);
    this.originSeq = Number(this.meta('origin') ?? 0);
    this.statements = prepare(this.db);
  }

  /** A value the corpus records beside the data (its dimensions, say), or undefined. */
  meta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  head(): number {
    return this.headSeq;
  }

  commit(batch: CatalogBatch): number {
    const seq = this.headSeq + 1;
    const s = this.statements;
    const run = this.db.transaction(() => {
      for (const n of batch.names ?? []) s.name.run(n.dictionary, n.code, n.name);
      for (const c of batch.campaigns ?? []) s.campaign.run(c.campaignId, c.budget, seq);
      for (const change of batch.ads ?? []) {
        if (change.kind === 'remove') {
          s.remove.run({ seq, id: change.id });
          continue;
        }
        const a = change.ad;
        s.upsert.run({
          id: a.id, seq, advertiser: a.advertiserId, campaign: a.campaignId, category: a.category, geos: JSON.stringify(a.geos),
          active: a.active ? 1 : 0, budget: a.budgetLeft, title: a.title ?? null,
          embedding: blob(change.embedding), setEmbedding: change.embedding === undefined ? 0 : 1,
          content: blob(change.content), setContent: change.content === undefined ? 0 : 1,
        });
      }
      s.head.run(String(seq));
      if (batch.origin !== undefined) s.origin.run(String(batch.origin));
    });
    try {
      run.immediate();
    } catch (error) {
      throw new CorpusError('ERR_CATALOG', `The ads catalog at ${this.path} refused a write (nothing of it was applied): ${(error as Error).message}`);
    }
    this.headSeq = seq;
    if (batch.origin !== undefined) this.originSeq = batch.origin;
    return seq;
  }

  origin(): number {
    return this.originSeq;
  }

  /**
   * A consistent copy of the catalog at `path` (SQLite's online backup: writes may go on meanwhile,
   * and the copy holds the state it finished at); resolves with the copy's origin and head.
   */
  async backup(path: string): Promise<{ origin: number; head: number }> {
    await this.db.backup(path);
    const copy = new Database(path, { readonly: true });
    try {
      const read = (key: string) => Number((copy.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? 0);
      return { origin: read('origin'), head: read('head') };
    } finally {
      copy.close();
    }
  }

  recordRefusal(origin: number): void {
    this.db.transaction(() => {
      this.statements.refuse.run(origin);
      this.statements.origin.run(String(origin));
    }).immediate();
    this.originSeq = origin;
  }

  wasRefused(origin: number): boolean {
    return this.statements.wasRefused.get(origin) !== undefined;
  }

  names(): NameEntry[] {
    const rows = this.db.prepare('SELECT dictionary, code, name FROM names ORDER BY dictionary, code').all() as { dictionary: NameEntry['dictionary']; code: bigint; name: string }[];
    return rows.map((r) => ({ dictionary: r.dictionary, code: Number(r.code), name: r.name }));
  }

  campaigns(): (CampaignChange & { seq: number })[] {
    const rows = this.db.prepare('SELECT name, budget, seq FROM campaigns').all() as { name: string; budget: number; seq: bigint }[];
    return rows.map((r) => ({ campaignId: r.name, budget: r.budget, seq: Number(r.seq) }));
  }

  *presentAds(batchSize = 10_000): Iterable<PresentAd[]> {
    let afterId = -(2n ** 63n);
    for (;;) {
      const rows = this.statements.present.all(afterId, batchSize) as (AdRow & { has_embedding: bigint; has_content: bigint })[];
      if (rows.length === 0) return;
      yield rows.map((r) => ({ ad: toAd(r), hasEmbedding: r.has_embedding === 1n, hasContent: r.has_content === 1n }));
      afterId = rows[rows.length - 1]!.id;
      if (rows.length < batchSize) return;
    }
  }

  *changesSince(since: number, batchSize = 10_000): Iterable<ChangedAd[]> {
    let afterSeq = BigInt(since);
    let afterId = -(2n ** 63n);
    for (;;) {
      const rows = this.statements.page.all(afterSeq, afterSeq, afterId, batchSize) as AdRow[];
      if (rows.length === 0) return;
      yield rows.map(toChange);
      const last = rows[rows.length - 1]!;
      afterSeq = last.seq;
      afterId = last.id;
      if (rows.length < batchSize) return;
    }
  }

  sample(n: number, dim: number): Float32Array {
    const rows = this.db.prepare('SELECT embedding FROM ads WHERE removed = 0 AND embedding IS NOT NULL LIMIT ?').all(n) as { embedding: Buffer }[];
    const out = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => out.set(vector(r.embedding)!, i * dim));
    return out;
  }

  dropTombstones(seq: number): number {
    return Number(this.db.prepare('DELETE FROM ads WHERE removed = 1 AND seq <= ?').run(seq).changes);
  }

  stats(): CatalogStats {
    const pages = this.db.pragma('page_count', { simple: true }) as bigint;
    const pageSize = this.db.pragma('page_size', { simple: true }) as bigint;
    return { head: this.headSeq, bytes: Number(pages * pageSize) };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function prepare(db: Database.Database) {
  return {
    name: db.prepare('INSERT OR REPLACE INTO names (dictionary, code, name) VALUES (?, ?, ?)'),
    campaign: db.prepare('INSERT INTO campaigns (name, budget, seq) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET budget = excluded.budget, seq = excluded.seq'),
    remove: db.prepare('UPDATE ads SET removed = 1, seq = @seq, embedding = NULL, content = NULL, embedding_seq = @seq, content_seq = @seq WHERE id = @id AND removed = 0'),
    // A vector given (setEmbedding 1) replaces the stored one, null included; otherwise it is kept.
    // A removed ad that comes back starts without vectors.
    upsert: db.prepare(`
      INSERT INTO ads (id, seq, removed, advertiser, campaign, category, geos, active, budget_left, title, embedding, embedding_seq, content, content_seq)
      VALUES (@id, @seq, 0, @advertiser, @campaign, @category, @geos, @active, @budget, @title,
              @embedding, CASE WHEN @setEmbedding THEN @seq ELSE 0 END, @content, CASE WHEN @setContent THEN @seq ELSE 0 END)
      ON CONFLICT (id) DO UPDATE SET
        seq = excluded.seq, advertiser = excluded.advertiser, campaign = excluded.campaign, category = excluded.category,
        geos = excluded.geos, active = excluded.active, budget_left = excluded.budget_left, title = excluded.title,
        embedding = CASE WHEN @setEmbedding THEN excluded.embedding WHEN ads.removed THEN NULL ELSE ads.embedding END,
        embedding_seq = CASE WHEN @setEmbedding OR ads.removed THEN excluded.seq ELSE ads.embedding_seq END,
        content = CASE WHEN @setContent THEN excluded.content WHEN ads.removed THEN NULL ELSE ads.content END,
        content_seq = CASE WHEN @setContent OR ads.removed THEN excluded.seq ELSE ads.content_seq END,
        removed = 0`),
    head: db.prepare("INSERT INTO meta (key, value) VALUES ('head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    origin: db.prepare("INSERT INTO meta (key, value) VALUES ('origin', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    refuse: db.prepare('INSERT OR IGNORE INTO refused (origin) VALUES (?)'),
    wasRefused: db.prepare('SELECT origin FROM refused WHERE origin = ?'),
    present: db.prepare(`SELECT id, advertiser, campaign, category, geos, active, budget_left, title,
      embedding IS NOT NULL AS has_embedding, content IS NOT NULL AS has_content FROM ads WHERE removed = 0 AND id > ? ORDER BY id LIMIT ?`),
    page: db.prepare('SELECT * FROM ads WHERE seq > ? OR (seq = ? AND id > ?) ORDER BY seq, id LIMIT ?'),
  };
}

function blob(v: Float32Array | null | undefined): Buffer | null {
  return v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null;
}

function vector(b: Buffer | null): Float32Array | undefined {
  if (!b) return undefined;
  // A copy: the Buffer's memory may not be 4-byte aligned.
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

function toAd(r: Pick<AdRow, 'id' | 'advertiser' | 'campaign' | 'category' | 'geos' | 'active' | 'budget_left' | 'title'>): CatalogAd {
  return {
    id: r.id, advertiserId: r.advertiser, campaignId: r.campaign, category: r.category, geos: JSON.parse(r.geos) as string[],
    active: r.active === 1n, budgetLeft: r.budget_left, ...(r.title !== null ? { title: r.title } : {}),
  };
}

function toChange(r: AdRow): ChangedAd {
  const removed = r.removed === 1n;
  const ad = removed ? undefined : toAd(r);
  return {
    id: r.id, seq: Number(r.seq), removed, ad, embedding: vector(r.embedding), content: vector(r.content),
    embeddingSeq: Number(r.embedding_seq), contentSeq: Number(r.content_seq),
  };
}
