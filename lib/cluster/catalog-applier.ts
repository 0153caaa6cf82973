/**
 * The catalog applier: one router at a time (a KV lease, lease.ts) turns catalog writes into the
 * shard logs' updates, so that only it writes the shard logs and the codes in them are those of
 * the catalog's order. For each catalog message, after its own corpus has applied it, it sends:
 *   - the ads the write gave an embedding, with their attributes as its corpus now has them;
 *   - the attributes of the other ads the write touched (updates without an embedding, spends,
 *     every ad of a campaign whose budget changed) that have an embedding;
 *   - the removes.
 * Attributes are read at the applier's newest state, never older than the message: an ad's final
 * state in the shards is the catalog's, whichever messages a new applier sends again.
 *
 * Progress is the key `catalog-applied` of the config bucket: the last catalog sequence sent and
 * the shard-log position that holds it (what a retrieve's readAfter waits for). The holder
 * updates it with compare-and-set on the revision it last wrote: a holder that lost its lease
 * without knowing fails there and stops. A new holder starts after the recorded sequence; the
 * messages a predecessor had sent past it are sent again, harmlessly (shard updates are idempotent).
 */
import type { KV, NatsConnection } from 'nats';
import type { CorpusWrite } from '../corpus/ad-corpus';
import type { AdStore } from '../corpus/ad-store';
import { integerIn, knownOptions } from '../validate';
import type { CatalogLog } from './catalog-log';
import type { CorpusLog } from './corpus-log';
import { catalogApplierLeaseKey, KvLease } from './lease';
import { laterPosition, type LogPosition } from './log-position';
import { checkName } from './names';
import { publishStored } from './publish';

/** The key of the applier's progress in the config bucket. */
export const catalogAppliedKey = 'catalog-applied';

export interface CatalogApplied {
  /** The last catalog sequence whose updates the shard logs hold. */
  catalogSeq: number;
  /** The shard-log position through which they are stored. */
  position: LogPosition;
}

export interface CatalogApplierOptions {
  /** Names this router in the lease (unique among the cluster's routers). */
  holderId: string;
  /** How long the lease lives without renewal (default 5000 ms): the longest a dead applier delays writes reaching the shards. */
  leaseMs?: number;
  /** Catalog messages sent between two progress records (default 256). */
  batch?: number;
  log?: (line: string) => void;
}

export interface CatalogApplierStats {
  /** Whether this router holds the lease now. */
  holding: boolean;
  /** Catalog messages this router sent to the shard logs, and how many it dead-lettered. */
  sent: number;
  deadLettered: number;
}

export class CatalogApplier {
  private readonly lease: KvLease;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private holding = false;
  /** When the lease was last taken or renewed (this process's clock). */
  private renewedAt = 0;
  /** The holder's last recorded progress and its revision: read once per holding, then kept. */
  private recorded: { applied: CatalogApplied; revision: number } | undefined;
  private stopped = false;
  private sent = 0;
  private deadLettered = 0;
  private readonly unlisten: () => void;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly config: KV,
    private readonly catalog: CatalogLog,
    private readonly store: AdStore,
    private readonly shardLog: CorpusLog,
    private readonly options: Required<Omit<CatalogApplierOptions, 'log'>> & Pick<CatalogApplierOptions, 'log'>,
  ) {
    this.lease = new KvLease(config, catalogApplierLeaseKey, options.holderId, options.leaseMs);
    // A new catalog message concerns the holder only; the others ask for the lease on the timer.
    this.unlisten = catalog.onApplied(() => this.holding && this.kick());
  }

  /**
   * Competes for the lease now and every third of a lease; while holding it, sends every catalog
   * message the router's corpus has applied. `store` is that corpus's attribute store.
   */
  static start(nc: NatsConnection, config: KV, catalog: CatalogLog, store: AdStore, shardLog: CorpusLog, options: CatalogApplierOptions): CatalogApplier {
    const o = knownOptions(options, 'CatalogApplier options', ['holderId', 'leaseMs', 'batch', 'log']);
    const applier = new CatalogApplier(nc, config, catalog, store, shardLog, {
      holderId: checkName(options.holderId, 'options.holderId'),
      leaseMs: integerIn(o.leaseMs ?? 5000, 'options.leaseMs', 100, 600_000),
      batch: integerIn(o.batch ?? 256, 'options.batch', 1, 100_000),
      log: options.log,
    });
    applier.kick();
    applier.timer = setInterval(() => applier.kick(), Math.max(50, Math.floor(applier.options.leaseMs / 3)));
    applier.timer.unref();
    return applier;
  }

  stats(): CatalogApplierStats {
    return { holding: this.holding, sent: this.sent, deadLettered: this.deadLettered };
  }

  /** Stops applying and gives the lease up (another router takes over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unlisten();
    await this.running?.catch(() => undefined);
    if (this.holding) await this.lease.release().catch(() => undefined);
    this.holding = false;
  }

  /** Runs a round now, or once the running one ends. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.round()
      .catch((error: Error) => {
        this.holding = false;
        this.recorded = undefined;
        this.options.log?.(`catalog applier ${this.options.holderId}: ${error.message}`);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Takes or renews the lease when a third of it has passed since the last time (once per round at most). */
  private async holdLease(): Promise<boolean> {
    if (this.holding && Date.now() - this.renewedAt < this.options.leaseMs / 3) return true;
    const held = await this.lease.acquire();
    if (held !== this.holding) this.options.log?.(`catalog applier ${this.options.holderId}: ${held ? 'took' : 'lost'} the lease`);
    if (held) this.renewedAt = Date.now();
    else this.recorded = undefined;
    this.holding = held;
    return held;
  }

  private async round(): Promise<void> {
    if (!(await this.holdLease())) return;
    this.recorded ??= await this.progress();
    let { applied, revision } = this.recorded;
    while (!this.stopped && applied.catalogSeq < this.catalog.applied) {
      const through = Math.min(this.catalog.applied, applied.catalogSeq + this.options.batch);
      let position = applied.position;
      for (let seq = applied.catalogSeq + 1; seq <= through; seq++) {
        const entry = await this.catalog.entry(seq);
        if ('write' in entry) position = laterPosition(position, await this.send(entry.write));
        else if (entry.refused.name === 'MalformedMessageError') await this.deadLetter(seq, entry.refused);
        this.sent++;
      }
      applied = { catalogSeq: through, position };
      // Compare-and-set on the revision this holder last saw: fails if another holder recorded progress since.
      revision = await this.config.update(catalogAppliedKey, encode(applied), revision);
      this.recorded = { applied, revision };
      if (!(await this.holdLease())) return;
    }
  }

  private async progress(): Promise<{ applied: CatalogApplied; revision: number }> {
    const entry = await this.config.get(catalogAppliedKey);
    if (entry && entry.operation === 'PUT') return { applied: decodeApplied(entry.value), revision: entry.revision };
    const start: CatalogApplied = { catalogSeq: 0, position: {} };
    try {
      return { applied: start, revision: await this.config.create(catalogAppliedKey, encode(start)) };
    } catch {
      // Another router created it first: read what it wrote.
      const again = await this.config.get(catalogAppliedKey);
      return { applied: decodeApplied(again!.value), revision: again!.revision };
    }
  }

  /** The shard-log updates of one catalog write, at the store's current state. */
  private async send(write: CorpusWrite): Promise<LogPosition> {
    const store = this.store;
    const removed = new Set(write.removes ?? []);
    const embedded = new Map<bigint, Float32Array>();
    const touched = new Set<bigint>();
    for (const u of write.upserts ?? []) {
      if (u.embedding && store.hasEmbedding(u.ad.id)) embedded.set(u.ad.id, u.embedding);
      else touched.add(u.ad.id);
    }
    for (const s of write.spends ?? []) touched.add(s.id);
    for (const c of write.campaigns ?? []) for (const id of store.adsOfCampaign(c.campaignId)) touched.add(id);
    for (const id of removed) embedded.delete(id);
    const attributesOnly = [...touched].filter((id) => !embedded.has(id) && !removed.has(id) && store.hasEmbedding(id));
    let position: LogPosition = {};
    if (embedded.size > 0) {
      const ids = [...embedded.keys()];
      const dim = this.shardLog.map.dim;
      const vectors = new Float32Array(ids.length * dim);
      ids.forEach((id, i) => vectors.set(embedded.get(id)!, i * dim));
      position = laterPosition(position, await this.shardLog.upsert(BigInt64Array.from(ids), vectors, store.nativeAttributes(ids)));
    }
    if (attributesOnly.length > 0) position = laterPosition(position, await this.shardLog.setAttributes(BigInt64Array.from(attributesOnly), store.nativeAttributes(attributesOnly)));
    if (removed.size > 0) position = laterPosition(position, await this.shardLog.remove(BigInt64Array.from(removed)));
    return position;
  }

  /** A catalog message no router could read: kept on the dead-letter stream for people to look at. */
  private async deadLetter(seq: number, error: Error): Promise<void> {
    const names = this.catalog.names;
    const jsm = await this.nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(names.catalogStream, { seq });
    this.options.log?.(`catalog applier: message ${seq} dead-lettered (${error.message})`);
    await publishStored(this.nc.jetstream(), names.catalogDeadLetterSubject, stored.data, { retryForMs: 10_000, what: `catalog message ${seq} (dead letter)` });
    this.deadLettered++;
  }
}

/** Reads the applier's progress as routers see it (readAfter), following the key as it changes. */
export class CatalogProgress {
  private latest: CatalogApplied = { catalogSeq: 0, position: {} };
  private readonly waiters = new Set<() => void>();
  private stopWatching: (() => void) | undefined;

  static async watch(config: KV): Promise<CatalogProgress> {
    const progress = new CatalogProgress();
    const watcher = await config.watch({ key: catalogAppliedKey });
    progress.stopWatching = () => watcher.stop();
    void (async () => {
      for await (const entry of watcher) {
        if (entry.operation !== 'PUT') continue;
        progress.latest = decodeApplied(entry.value);
        for (const wake of progress.waiters) wake();
      }
    })().catch(() => undefined);
    return progress;
  }

  get current(): CatalogApplied {
    return this.latest;
  }

  /** The position holding catalog sequence `seq`, once the applier has recorded it; undefined after `timeoutMs`. */
  async waitFor(seq: number, timeoutMs: number): Promise<LogPosition | undefined> {
    if (this.latest.catalogSeq >= seq) return this.latest.position;
    return new Promise((resolve) => {
      const wake = () => {
        if (this.latest.catalogSeq < seq) return;
        done(this.latest.position);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (position: LogPosition | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(position);
      };
      this.waiters.add(wake);
    });
  }

  stop(): void {
    this.stopWatching?.();
  }
}

function encode(applied: CatalogApplied): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(applied));
}

function decodeApplied(bytes: Uint8Array): CatalogApplied {
  const v = JSON.parse(new TextDecoder().decode(bytes)) as CatalogApplied;
  if (!Number.isInteger(v?.catalogSeq) || typeof v.position !== 'object' || v.position === null) throw new Error(`The config bucket's ${catalogAppliedKey} is not what cangen writes`);
  return v;
}
