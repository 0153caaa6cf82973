/**
 * The catalog stream, seen from one router: every service-level write (ads with their names as
 * strings, removes, spends, campaign budgets) is published to one JetStream subject and applied,
 * in stream order, by every router to its own AdCorpus (which keeps attributes, names and the
 * content index, and no behavioural vectors). Applied in one order, the same writes intern the
 * same names to the same codes on every router and resolve spends to the same budgets, with no
 * dictionary service. A write resolves with its stream sequence once this router has applied it;
 * a write the corpus refuses (an invalid ad) is refused the same way by every router, and its
 * publisher gets that error.
 *
 * A starting router replays the stream before it serves (`open` resolves then): all of it into a
 * corpus in memory, the rest after what its corpus on disk holds (AdCorpus.orderedThrough).
 */
import { randomBytes } from 'node:crypto';
import type { ConsumerMessages, JetStreamClient, NatsConnection } from 'nats';
import type { AdCorpus, CorpusWrite, WriteOrderer } from '../corpus/ad-corpus';
import { InvalidArgumentError } from '../errors';
import { integerIn, knownOptions } from '../validate';
import { decodeCatalogWrite, encodeCatalogWrite } from './catalog-codec';
import { ClusterError } from './errors';
import { clusterNames, type ClusterNames } from './names';
import { publishStored } from './publish';
import { isTransient, retryTransient } from './transient';

export interface CatalogLogOptions {
  /** How long a write's publish is retried while JetStream fails over (default 10000 ms). */
  retryForMs?: number;
  /** How long opening waits for JetStream through a failover (default 30000 ms). */
  startTimeoutMs?: number;
  /** Called once if a write the stream stored cannot be applied here (the corpus stopped): this router must restart. */
  onFatal?: (error: Error) => void;
  log?: (line: string) => void;
}

export interface CatalogStats {
  /** The last catalog sequence this router has applied (or refused). */
  applied: number;
  /** Since this router started: writes the corpus refused (every router refuses them alike), and messages that did not decode. */
  refused: number;
  malformed: number;
}

/** What a catalog message held, for the applier: the write, or why it was not applied. */
export type CatalogEntry = { write: CorpusWrite } | { refused: Error };

/** Catalog entries kept for the applier (it reads them right after they are applied); older ones are read back from the stream. */
const recentEntries = 256;

export class CatalogLog implements WriteOrderer {
  private appliedSeq = 0;
  private messages: ConsumerMessages | undefined;
  private applying: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<number, (() => void)[]>();
  private readonly refusals = new Map<number, Error>();
  private readonly recent = new Map<number, CatalogEntry>();
  private readonly listeners = new Set<(seq: number) => void>();
  private malformedCount = 0;
  private refusedCount = 0;
  private failure: Error | undefined;
  private closing = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    readonly names: ClusterNames,
    private readonly corpus: AdCorpus,
    private readonly options: CatalogLogOptions,
    private readonly maxPayload: number,
  ) {}

  /**
   * Follows the cluster's catalog into `corpus` (a corpus of its own, written by nothing else) and
   * resolves once it has applied every message stored when it started. The corpus's own writes are
   * then sent through here (orderWritesThrough).
   */
  static async open(nc: NatsConnection, cluster: string, corpus: AdCorpus, options: CatalogLogOptions = {}): Promise<CatalogLog> {
    const o = knownOptions(options, 'CatalogLog options', ['retryForMs', 'startTimeoutMs', 'onFatal', 'log']);
    integerIn(o.retryForMs ?? 10_000, 'options.retryForMs', 0, 600_000);
    const startTimeoutMs = integerIn(o.startTimeoutMs ?? 30_000, 'options.startTimeoutMs', 0, 600_000);
    const names = clusterNames(cluster);
    const catalog = new CatalogLog(nc, nc.jetstream(), names, corpus, o, nc.info?.max_payload ?? 1024 * 1024);
    try {
      await catalog.follow(startTimeoutMs);
    } catch (error) {
      await catalog.close();
      throw error;
    }
    corpus.orderWritesThrough(catalog);
    return catalog;
  }

  /** The last catalog sequence applied here. */
  get applied(): number {
    return this.appliedSeq;
  }

  stats(): CatalogStats {
    return { applied: this.appliedSeq, refused: this.refusedCount, malformed: this.malformedCount };
  }

  /** Calls `listener` after each message is applied; returns a function that removes it. */
  onApplied(listener: (seq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Publishes a write and resolves with its catalog sequence once this router has applied it;
   * rejects with the corpus's error when the write is refused (every router refuses it alike).
   */
  async append(write: CorpusWrite): Promise<number> {
    if (this.failure) throw this.failure;
    const payload = encodeCatalogWrite(write);
    if (payload.length > this.maxPayload - 4096) {
      throw new InvalidArgumentError(`Expected a write of at most ${this.maxPayload - 4096} bytes as a catalog message (the NATS server's max_payload less headroom) but this one is ${payload.length}: split it into smaller writes`);
    }
    const seq = await publishStored(this.js, this.names.catalogSubject, payload, { retryForMs: this.options.retryForMs ?? 10_000, what: 'a catalog write' });
    await this.appliedThrough(seq);
    if (this.failure) throw this.failure;
    if (this.appliedSeq < seq) throw new ClusterError('ERR_CLUSTER', `Catalog write ${seq} is stored, but this router closed before applying it: read it back with readAfter on another router`);
    const refused = this.refusals.get(seq);
    if (refused) throw refused;
    return seq;
  }

  /** Resolves once this router has applied the catalog through `seq` (or has closed: check `applied`). */
  appliedThrough(seq: number): Promise<void> {
    if (this.appliedSeq >= seq || this.closing) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve) => {
      const list = this.waiters.get(seq) ?? [];
      list.push(resolve);
      this.waiters.set(seq, list);
    });
  }

  /** The write of catalog message `seq` (applied here already), or why it was not applied. */
  async entry(seq: number): Promise<CatalogEntry> {
    if (seq > this.appliedSeq) throw new ClusterError('ERR_CLUSTER', `Catalog message ${seq} is not applied here yet (applied through ${this.appliedSeq})`);
    const cached = this.recent.get(seq);
    if (cached) return cached;
    const refused = this.refusals.get(seq) ?? (this.corpus.wasRefused(seq) ? new ClusterError('ERR_CLUSTER', `Catalog write ${seq} was refused when this router applied it`) : undefined);
    if (refused) return { refused };
    const jsm = await this.nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(this.names.catalogStream, { seq });
    return { write: decodeCatalogWrite(stored.data) };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.messages?.close().catch(() => undefined);
    await this.applying.catch(() => undefined);
    // Writes waiting to be applied here never will be: let them go (append says so).
    for (const list of this.waiters.values()) list.forEach((resolve) => resolve());
    this.waiters.clear();
  }

  private async follow(startTimeoutMs: number): Promise<void> {
    const log = this.options.log ?? (() => undefined);
    const jsm = await retryTransient(() => this.nc.jetstreamManager(), startTimeoutMs);
    let head: number;
    try {
      head = (await retryTransient(() => jsm.streams.info(this.names.catalogStream), startTimeoutMs)).state.last_seq;
    } catch (error) {
      if (isTransient(error)) throw error;
      throw new ClusterError('ERR_CLUSTER', `Cluster '${this.names.cluster}' has no catalog stream ${this.names.catalogStream} (${(error as Error).message}): run initCluster (cangen shard --init) again with this version, which adds it`);
    }
    // An ordered consumer: messages in stream order, re-created at the last applied one + 1 after an interruption.
    this.appliedSeq = this.corpus.orderedThrough;
    const resumed = this.appliedSeq;
    const consumer = await retryTransient(() => this.js.consumers.get(this.names.catalogStream, {
      filterSubjects: this.names.catalogSubject,
      opt_start_seq: resumed + 1,
      name_prefix: `catalog-${randomBytes(4).toString('hex')}`,
    }), startTimeoutMs);
    this.messages = await consumer.consume({ max_messages: 256 });
    this.applying = this.applyAll(this.messages, log);
    const started = Date.now();
    await this.appliedThrough(head);
    if (head > resumed) log(`catalog: writes ${resumed + 1} to ${head} replayed into the router's corpus in ${Date.now() - started} ms (${this.corpus.size} ads)`);
  }

  private async applyAll(messages: ConsumerMessages, log: (line: string) => void): Promise<void> {
    for await (const m of messages) {
      if (m.seq <= this.appliedSeq) continue;
      if (this.closing) return;
      let entry: CatalogEntry;
      try {
        const write = decodeCatalogWrite(m.data);
        try {
          await this.corpus.applyOrdered(write, m.seq);
          entry = { write };
        } catch (error) {
          if (this.corpus.failure !== undefined) return this.fail(error as Error);
          entry = { refused: error as Error };
        }
      } catch (error) {
        this.malformedCount++;
        log(`catalog: message ${m.seq} skipped: ${(error as Error).message}`);
        entry = { refused: error as Error };
      }
      if ('refused' in entry) {
        this.refusals.set(m.seq, entry.refused);
        if (this.refusals.size > recentEntries) this.refusals.delete(this.refusals.keys().next().value!);
        this.refusedCount++;
        await this.corpus.recordRefusal(m.seq);
      }
      this.recent.set(m.seq, entry);
      if (this.recent.size > recentEntries) this.recent.delete(this.recent.keys().next().value!);
      this.appliedSeq = m.seq;
      for (const [seq, list] of this.waiters) {
        if (seq > m.seq) continue;
        this.waiters.delete(seq);
        list.forEach((resolve) => resolve());
      }
      for (const listener of this.listeners) listener(m.seq);
    }
  }

  /** A stored write this corpus could not apply: it stops taking writes, and so does this router. */
  private fail(error: Error): void {
    this.failure = new ClusterError('ERR_CLUSTER', `The router's corpus stopped at catalog message ${this.appliedSeq + 1} (${error.message}): restart this router to replay the catalog`);
    for (const list of this.waiters.values()) list.forEach((resolve) => resolve());
    this.waiters.clear();
    this.options.onFatal?.(this.failure);
  }
}
