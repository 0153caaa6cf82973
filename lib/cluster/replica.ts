/**
 * A shard replica: holds one shard's AdIndex (any kind), applies the shard's corpus log in order
 * through an ordered JetStream consumer, registers in the membership bucket, and answers shard
 * searches by NATS request-reply on its own subject.
 *
 * Applying is idempotent: a message at or below the applied sequence (seen again after a consumer
 * reset) is skipped, and upserts and removes replace state rather than add to it. A message that does not decode, or that the index refuses, goes to the shard's
 * dead-letter subject (with its sequence and the reason in headers) and counts in `deadLetters`;
 * the replica moves on and never stops on bad input.
 *
 * A replica starts from the newest snapshot of its shard that verifies (lib/cluster/snapshots.ts;
 * an older one, or the whole log, when it does not) and replays the log after the snapshot's
 * sequence. Periodically the replica holding the shard's snapshot lease saves its index, between
 * two log messages so that the file includes exactly the applied sequence, and uploads it. The
 * position lives in the replica (its applied sequence), not in a server-side cursor.
 */
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { headers, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type KV, type Msg, type NatsConnection, type Subscription } from 'nats';
import { AdIndex } from '../ad-index';
import type { LearnedScorer } from '../scorer';
import { CangenError, ClosedError, DimensionMismatchError } from '../errors';
import { integerIn, invalid, knownOptions } from '../validate';
import { ClusterError } from './errors';
import { readTrimPoint, trimShardLog } from './log-trim';
import { checkTrainOptions, LogTrainer, type HeldMessage, type TrainOptions } from './log-trainer';
import { MemberRegistration, memberKey, membersBucket, type MemberEntry, type ReplicaHealth } from './membership';
import { checkName, clusterNames, type ClusterNames } from './names';
import { readShardMap, type ShardMap } from './shard-map';
import { decodeSearchRequest, encodeErrorReply, encodeSearchReply } from './search-codec';
import { SnapshotLease } from './snapshot-lease';
import { loadNewestSnapshot, snapshotFormat, SnapshotStore, snapshotTempPath, writeSnapshotFile, type SnapshotManifest } from './snapshots';
import { isTransient, retryTransient } from './transient';
import { decodeUpdate, type CorpusUpdate } from './update-codec';

export interface ReplicaOptions {
  cluster: string;
  shard: number;
  /** Unique among the cluster's replicas (letters, digits, '_', '-'): names its consumer, entry and search subject. */
  replicaId: string;
  /** The shard's index, empty (any kind; IVF kinds trained); default a flat index of the shard map's dim and metric. Closed by close(). */
  index?: AdIndex;
  /** Membership refresh interval (default a third of the shard map's membership TTL). */
  heartbeatMs?: number;
  /** Threads per shard search (default 0: the index's own). */
  searchThreads?: number;
  /** Log messages in flight to this replica at once (default 256). */
  prefetch?: number;
  /**
   * How long one pull request for log messages lasts (ms, default 5000, at least 1000). Server
   * heartbeats come every half of it, and two missed ones make the client pull again, so after
   * a JetStream node failure the replica resumes within about this long.
   */
  pullExpiresMs?: number;
  /** How long start() keeps retrying JetStream calls that time out (a failover in progress): default 30000 ms. */
  startTimeoutMs?: number;
  /**
   * Called when the replica finds it can no longer follow its shard's log (it is behind the log's
   * trim point: partitioned from NATS longer than its membership lasts while the log was trimmed).
   * The replica has already left the cluster (deregistered, closed); restart it to load a
   * snapshot. Default: the error is logged. `cangen shard` exits with status 1.
   */
  onFatal?: (error: Error) => void;
  /**
   * A learned scorer (LearnedScorer.load, holding no ads; its itemDim the shard map's dim), attached
   * to the shard's index at start: the replica then also answers scorer searches (router option
   * `scorer`), ranking its shard's ads for users of the model's userDim. Closed by close().
   */
  scorer?: LearnedScorer;
  /**
   * For an IVF index given untrained: the replica trains it from its shard's log (lib/cluster/log-trainer.ts),
   * holding the log's messages until `sample` live ads (default 100000) or, once caught up, `minimum`
   * (default 1000), then applies them. Not used when a snapshot is loaded (it is trained).
   */
  train?: TrainOptions;
  /** Snapshots of the shard's index (default: loaded at start, taken every 5 minutes, 2 kept); false: neither. */
  snapshots?: false | SnapshotOptions;
  log?: (line: string) => void;
}

export interface SnapshotOptions {
  /** How often the replica holding the shard's lease snapshots when the index changed (ms, default 300000; 0: only on snapshot()). */
  everyMs?: number;
  /** Snapshots kept per shard, newest first (default 2: one to fall back to). */
  keep?: number;
  /** The lease's length (default 3 x everyMs, at least 60 s): how long a crashed snapshotter holds the role. */
  leaseMs?: number;
  /** Where snapshot files are written and read locally (default the OS's temporary directory). */
  dir?: string;
  /**
   * After storing a snapshot, purge the shard's log up to the oldest snapshot kept, and never past
   * the sequence any registered replica of the shard has applied (default false: the log keeps
   * everything). A replica can then start only from a snapshot at or after the purged point.
   */
  trimLog?: boolean;
}

export interface ReplicaStats {
  applied: number;
  /** The shard's last log sequence when the replica started: it serves once applied reaches it. */
  startTarget: number;
  health: ReplicaHealth;
  updatesApplied: number;
  /** Messages of the shard stored in the log and not yet applied, as of the last message applied. */
  lagMessages: number;
  /** While messages are pending: seconds since the log stored the last message applied (an upper bound of the delay; 0 when caught up). */
  lagSeconds: number;
  deadLetters: number;
  searches: number;
  inflight: number;
  /** Log messages held while an IVF index waits for its training sample (0 once trained). */
  heldForTraining: number;
  /** The sequence of the snapshot the replica started from (0: it replayed the whole log). */
  startedFromSnapshot: number;
  /** Snapshots passed over at start (failed checksum, refused file, another kind). */
  snapshotFallbacks: number;
  snapshotsTaken: number;
  /** The newest snapshot of the shard this replica knows of (taken, loaded or listed): its sequence and age in seconds (-1: none). */
  snapshotSequence: number;
  snapshotAgeSeconds: number;
}

interface SnapshotState {
  store: SnapshotStore;
  options: SnapshotOptions;
  lease?: SnapshotLease;
  timer?: NodeJS.Timeout;
  taking?: Promise<SnapshotManifest | undefined>;
  startedFrom: number;
  fallbacks: number;
  taken: number;
  trimmedThrough?: number;
  newest?: { sequence: number; createdAt: number };
}

export class ShardReplica {
  readonly shard: number;
  readonly replicaId: string;
  readonly index: AdIndex;
  readonly scorer: LearnedScorer | undefined;
  private appliedSeq: number;
  private healthState: ReplicaHealth = 'catching-up';
  private updates = 0;
  private pending = 0;
  /** When the log stored the last applied message (ms since the epoch). */
  private appliedStoredAt = 0;
  private dead = 0;
  private searchCount = 0;
  private readonly answering = new Set<Promise<void>>();
  private readonly waiters = new Set<{ seq: number; wake: () => void }>();
  private messages: ConsumerMessages | undefined;
  private subscription: Subscription | undefined;
  private registration: MemberRegistration | undefined;
  private applying: Promise<void> = Promise.resolve();
  /** Applying a log message and saving a snapshot take turns here, so a snapshot includes exactly the applied sequence. */
  private turn: Promise<unknown> = Promise.resolve();
  private closing = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly names: ClusterNames,
    private readonly config: KV,
    readonly map: ShardMap,
    private readonly startTarget: number,
    private readonly options: ReplicaOptions,
    private readonly log: (line: string) => void,
    index: AdIndex,
    private readonly snapshots: SnapshotState | undefined,
    /** Present while the IVF index waits for enough ads from the log to train on. */
    private trainer: LogTrainer | undefined,
  ) {
    this.shard = options.shard;
    this.replicaId = options.replicaId;
    this.index = index;
    this.scorer = options.scorer;
    this.appliedSeq = snapshots?.startedFrom ?? 0;
    if (this.appliedSeq >= startTarget) this.healthState = 'serving';
  }

  /** Joins the cluster: replays the shard's log, registers, and answers searches. Resolves once subscribed (it may still be catching up). */
  static async start(nc: NatsConnection, options: ReplicaOptions): Promise<ShardReplica> {
    knownOptions(options, 'replica options', ['cluster', 'shard', 'replicaId', 'index', 'scorer', 'heartbeatMs', 'searchThreads', 'prefetch', 'pullExpiresMs', 'startTimeoutMs', 'snapshots', 'onFatal', 'train', 'log']);
    const trainOptions = checkTrainOptions(options.train);
    const snapshotOptions = options.snapshots === false ? undefined : checkSnapshotOptions(options.snapshots ?? {});
    integerIn(options.pullExpiresMs ?? 5000, 'options.pullExpiresMs', 1000, 600_000);
    const startTimeoutMs = integerIn(options.startTimeoutMs ?? 30_000, 'options.startTimeoutMs', 0, 3_600_000);
    const names = clusterNames(options.cluster);
    checkName(options.replicaId, 'options.replicaId');
    const log = options.log ?? (() => {});
    const patiently = <T>(what: string, call: () => Promise<T>) =>
      retryTransient(call, startTimeoutMs, (error) => log(`replica ${options.replicaId}: ${what} failed (${error.message}); retrying`));
    const map = await patiently('reading the shard map', () => readShardMap(nc, options.cluster));
    integerIn(options.shard, 'options.shard', 0, map.shards - 1);
    if (options.index && (options.index.dim !== map.dim || options.index.metric !== map.metric)) {
      throw new ClusterError('ERR_SHARD_MAP', `Expected an index of dim ${map.dim} and metric '${map.metric}' for cluster '${map.cluster}' but received dim ${options.index.dim} and '${options.index.metric}'`);
    }
    const jsm = await patiently('binding JetStream', () => nc.jetstreamManager());
    const subject = names.shardSubject(options.shard);
    const target = await patiently('reading the last log sequence', () => lastSequence(jsm, names.logStream, subject));
    const config = await patiently('binding the config bucket', () => nc.jetstream().views.kv(names.configBucket, { bindOnly: true }));
    const trimmed = await patiently('reading the log trim point', () => readTrimPoint(config, options.shard));
    let snapshots: SnapshotState | undefined;
    let index = options.index;
    if (snapshotOptions) {
      const store = await patiently('binding the snapshot store', () => SnapshotStore.open(nc, names, map.streamReplicas));
      snapshots = { store, options: snapshotOptions, startedFrom: 0, fallbacks: 0, taken: 0 };
      const expect = index ?? { kind: 'flat', dim: map.dim, metric: map.metric };
      const outcome = await patiently('loading a snapshot', () => loadNewestSnapshot(store, names.cluster, options.shard, {
        expect: { kind: expect.kind, dim: expect.dim, metric: expect.metric }, minSequence: trimmed, threads: options.index?.threads, dir: snapshotOptions.dir,
      }));
      for (const { name, reason } of outcome.skipped) log(`replica ${options.replicaId}: snapshot ${name} passed over (${reason})`);
      snapshots.fallbacks = outcome.skipped.length;
      if (outcome.loaded) {
        const { manifest } = outcome.loaded;
        index?.close(); // the caller handed it over; the snapshot's index takes its place
        index = outcome.loaded.index;
        snapshots.startedFrom = manifest.sequence;
        snapshots.newest = { sequence: manifest.sequence, createdAt: Date.parse(manifest.createdAt) };
        log(`replica ${options.replicaId}: loaded snapshot of shard ${options.shard} at sequence ${manifest.sequence} (${manifest.ads} ads, ${manifest.bytes} bytes)`);
      }
    }
    if ((snapshots?.startedFrom ?? 0) < trimmed) {
      index?.close();
      throw new ClusterError('ERR_SNAPSHOT', `The log of shard ${options.shard} is trimmed through sequence ${trimmed} and ${snapshots ? 'no snapshot at or after it could be loaded' : 'this replica was started with snapshots: false'}: ` +
        'it cannot be rebuilt from the log alone. Restore a snapshot of the shard (or start the replica with snapshots) and try again.');
    }
    const shardIndex = index ?? new AdIndex({ dim: map.dim, metric: map.metric });
    const trainer = shardIndex.isTrained ? undefined : new LogTrainer(trainOptions, map.dim);
    const replica = new ShardReplica(nc, nc.jetstream(), names, config, map, target, options, log, shardIndex, snapshots, trainer);
    try {
      await options.scorer?.attach(replica.index);
      await replica.begin(patiently);
    } catch (error) {
      await replica.close();
      throw error;
    }
    return replica;
  }

  private async begin(patiently: <T>(what: string, call: () => Promise<T>) => Promise<T>): Promise<void> {
    // An ordered consumer: JetStream delivers the shard's messages in stream order, the client
    // checks every delivery sequence, and on a gap, missed heartbeats or a lost server it
    // re-creates the consumer at the last applied message + 1. Order is thus guaranteed, which a
    // durable consumer's redelivery after a server failure does not give (see docs/CLUSTER.md).
    // The index holds the shard through the applied sequence (0 without a snapshot): replay starts after it.
    const consumer = await patiently('creating the log consumer', () => this.js.consumers.get(this.names.logStream, {
      filterSubjects: this.names.shardSubject(this.shard),
      opt_start_seq: this.appliedSeq + 1,
      // Unique per start: the consumer of a killed predecessor with the same id may still exist.
      name_prefix: `replica-${this.replicaId}-${randomBytes(4).toString('hex')}`,
    }));
    this.messages = await consumer.consume({ max_messages: this.options.prefetch ?? 256, expires: this.options.pullExpiresMs ?? 5000 });
    void this.reportStatus(this.messages);
    this.applying = this.applyAll(this.messages);
    this.subscription = this.nc.subscribe(this.names.searchSubject(this.replicaId), {
      callback: (error, msg) => {
        if (error) return;
        const answer = this.answer(msg);
        this.answering.add(answer);
        void answer.finally(() => this.answering.delete(answer));
      },
    });
    const heartbeat = this.options.heartbeatMs ?? Math.max(50, Math.floor(this.map.membershipTtlMs / 3));
    const bucket = await patiently('binding the members bucket', () => membersBucket(this.nc, this.map.cluster));
    this.registration = new MemberRegistration(bucket, () => this.entry(), heartbeat, this.log);
    await patiently('registering', () => this.registration!.start());
    const snapshots = this.snapshots;
    const everyMs = snapshots?.options.everyMs ?? 0;
    if (snapshots && everyMs > 0) {
      snapshots.lease = new SnapshotLease(this.config, this.shard, this.replicaId, snapshots.options.leaseMs ?? Math.max(60_000, 3 * everyMs));
      snapshots.timer = setInterval(() => void this.snapshotTick(), everyMs);
      snapshots.timer.unref();
    }
  }

  get applied(): number {
    return this.appliedSeq;
  }

  get health(): ReplicaHealth {
    return this.healthState;
  }

  stats(): ReplicaStats {
    return {
      applied: this.appliedSeq, startTarget: this.startTarget, health: this.healthState, updatesApplied: this.updates,
      lagMessages: this.pending, lagSeconds: this.pending > 0 ? Math.max(0, (Date.now() - this.appliedStoredAt) / 1000) : 0,
      deadLetters: this.dead, searches: this.searchCount, inflight: this.answering.size,
      heldForTraining: this.trainer?.heldMessages ?? 0, startedFromSnapshot: this.snapshots?.startedFrom ?? 0, snapshotFallbacks: this.snapshots?.fallbacks ?? 0, snapshotsTaken: this.snapshots?.taken ?? 0,
      snapshotSequence: this.snapshots?.newest?.sequence ?? -1,
      snapshotAgeSeconds: this.snapshots?.newest ? Math.max(0, (Date.now() - this.snapshots.newest.createdAt) / 1000) : -1,
    };
  }

  /**
   * Snapshots the index now, whoever holds the lease, and keeps the newest `keep`. Applying waits
   * while the file is saved (searches go on); the upload runs beside it. Resolves with the
   * manifest, or undefined when the newest snapshot already includes every applied message.
   */
  snapshot(): Promise<SnapshotManifest | undefined> {
    const s = this.snapshots;
    if (!s) return Promise.reject(new ClusterError('ERR_SNAPSHOT', `Replica ${this.replicaId} was started with snapshots: false`));
    if (this.closing) return Promise.reject(new ClosedError(`Replica ${this.replicaId} is closing`));
    s.taking ??= this.takeSnapshot(s).finally(() => { s.taking = undefined; });
    return s.taking;
  }

  private async takeSnapshot(s: SnapshotState): Promise<SnapshotManifest | undefined> {
    const path = snapshotTempPath(s.options.dir, this.names.cluster, this.shard);
    try {
      const saved = await this.exclusive(async () => {
        // Nothing new since the newest snapshot, or an IVF index still waiting for its training sample.
        if ((s.newest && s.newest.sequence >= this.appliedSeq) || this.trainer) return undefined;
        return { sequence: this.appliedSeq, ads: this.index.size, file: await writeSnapshotFile(this.index, path) };
      });
      if (!saved) return undefined;
      const manifest: SnapshotManifest = {
        format: snapshotFormat, cluster: this.names.cluster, shard: this.shard, sequence: saved.sequence, kind: this.index.kind, dim: this.index.dim,
        metric: this.index.metric, ads: saved.ads, bytes: saved.file.bytes, sha256: saved.file.sha256, createdAt: new Date().toISOString(), replicaId: this.replicaId,
      };
      await s.store.upload(saved.file, manifest);
      s.taken++;
      s.newest = { sequence: manifest.sequence, createdAt: Date.parse(manifest.createdAt) };
      const pruned = await s.store.prune(this.shard, s.options.keep ?? 2);
      this.log(`replica ${this.replicaId}: snapshot of shard ${this.shard} at sequence ${manifest.sequence} stored (${manifest.ads} ads, ${manifest.bytes} bytes; ${pruned} older deleted)`);
      if (s.options.trimLog) await this.trimLog(s);
      return manifest;
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }

  /** Purges the shard's log through the oldest snapshot kept, but never past what a registered replica of the shard has applied. */
  private async trimLog(s: SnapshotState): Promise<void> {
    const oldestKept = (await s.store.list(this.shard)).filter((e) => e.manifest).at(-1)?.manifest?.sequence ?? 0;
    const members = await membersBucket(this.nc, this.map.cluster);
    let through = Math.min(oldestKept, this.appliedSeq);
    // Keys first, entries after: awaiting inside the key listing's loop lost keys (nats 2.29.3).
    const keys: string[] = [];
    for await (const key of await members.keys(`shard.${this.shard}.*`)) keys.push(key);
    // Its own entry may be a heartbeat old: this replica's applied sequence is taken as it is now.
    for (const key of keys.filter((k) => k !== memberKey(this.shard, this.replicaId))) {
      const entry = await members.get(key);
      if (entry?.operation !== 'PUT') continue;
      const applied = Number((JSON.parse(new TextDecoder().decode(entry.value)) as Partial<MemberEntry>).applied);
      if (Number.isSafeInteger(applied)) through = Math.min(through, applied);
    }
    if (through <= (s.trimmedThrough ?? 0)) return;
    s.trimmedThrough = await trimShardLog(await this.nc.jetstreamManager(), this.config, this.names, this.shard, through);
    this.log(`replica ${this.replicaId}: log of shard ${this.shard} trimmed through sequence ${s.trimmedThrough}`);
  }

  /**
   * A replica below the log's trim point would skip purged updates without noticing: checked when
   * the log consumer is re-created and at every snapshot check; such a replica leaves the cluster.
   */
  private async checkTrimPoint(): Promise<void> {
    if (this.closing) return;
    const trimmed = await readTrimPoint(this.config, this.shard);
    if (trimmed <= this.appliedSeq || this.closing) return;
    const error = new ClusterError('ERR_SNAPSHOT', `Replica ${this.replicaId} of shard ${this.shard} has applied sequence ${this.appliedSeq} but the log is trimmed through ${trimmed}: ` +
      'it cannot follow the log any more and leaves the cluster; restart it to load a snapshot');
    this.log(error.message);
    await this.close();
    if (this.options.onFatal) this.options.onFatal(error);
  }

  /** The periodic check: learn the newest snapshot (for its age), and snapshot when this replica holds the lease and the index changed since. */
  private async snapshotTick(): Promise<void> {
    const s = this.snapshots!;
    if (this.closing || this.healthState !== 'serving' || s.taking) return;
    try {
      await this.checkTrimPoint();
      const newest = (await s.store.list(this.shard)).find((e) => e.manifest)?.manifest;
      if (newest && newest.sequence > (s.newest?.sequence ?? -1)) s.newest = { sequence: newest.sequence, createdAt: Date.parse(newest.createdAt) };
      if (await s.lease!.acquire()) await this.snapshot();
    } catch (error) {
      if (!this.closing) this.log(`replica ${this.replicaId}: snapshot of shard ${this.shard} failed (${(error as Error).message}); next try in ${s.options.everyMs} ms`);
    }
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.turn.then(task, task);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Resolves true once the applied sequence reaches `seq`, false when `timeoutMs` passes first. */
  waitApplied(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.appliedSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { seq, wake: () => finish(true) };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(ok);
      };
      this.waiters.add(waiter);
    });
  }

  private entry(): MemberEntry {
    return {
      replicaId: this.replicaId, shard: this.shard, subject: this.names.searchSubject(this.replicaId), applied: this.appliedSeq,
      health: this.healthState, inflight: this.answering.size, lagMessages: this.pending, deadLetters: this.dead, updatedAt: Date.now(),
      ...(this.scorer ? { scorer: { kind: this.scorer.kind, userDim: this.scorer.userDim, heads: this.scorer.heads, scenarios: this.scorer.scenarios } } : {}),
    };
  }

  private async applyAll(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      // Below the applied (or held) sequence: a message seen before a consumer reset, applied already.
      if (m.seq <= Math.max(this.appliedSeq, this.trainer?.heldThrough ?? 0)) continue;
      const applied = this.trainer ? await this.exclusive(() => this.holdForTraining(m)) : await this.exclusive(() => this.applyMessage(m));
      if (!applied) return;
      this.afterApply();
    }
  }

  /** Applies one log message (or dead-letters it); false when the replica is closing. */
  private async applyMessage(m: JsMsg, held?: HeldMessage): Promise<boolean> {
    try {
      if (held?.error) throw held.error;
      await this.apply(held?.update ?? decodeUpdate(m.data));
      this.updates++;
    } catch (error) {
      if (this.closing || error instanceof ClosedError) return false;
      await this.deadLetter(m, error);
    }
    this.appliedSeq = m.seq;
    this.pending = m.info.pending;
    this.appliedStoredAt = m.info.timestampNanos / 1e6;
    return true;
  }

  /** Holds a message while the IVF index waits for a training sample; trains and applies everything held once there is one. */
  private async holdForTraining(m: JsMsg): Promise<boolean> {
    const trainer = this.trainer!;
    let held: HeldMessage;
    try {
      held = { msg: m, update: decodeUpdate(m.data) };
    } catch (error) {
      held = { msg: m, error };
    }
    trainer.hold(held);
    this.pending = m.info.pending;
    if (this.healthState === 'serving') {
      // Ads are waiting to be indexed: answers would miss them until the index is trained.
      this.healthState = 'catching-up';
      void this.registration?.refresh();
    }
    if (!trainer.ready(m.info.pending === 0 || m.seq >= this.startTarget)) return true;
    const sample = trainer.sampleVectors();
    try {
      await this.index.train(sample);
    } catch (error) {
      if (this.closing || error instanceof ClosedError) return false;
      this.log(`replica ${this.replicaId}: training the shard's ${this.index.kind} index on ${sample.length / this.index.dim} ads failed (${(error as Error).message}); holding the log until more ads arrive`);
      return true;
    }
    this.log(`replica ${this.replicaId}: trained the shard's ${this.index.kind} index on ${sample.length / this.index.dim} ads of its log; applying ${trainer.heldMessages} held messages`);
    this.trainer = undefined;
    for (const message of trainer.release()) {
      if (!(await this.applyMessage(message.msg, message))) return false;
    }
    return true;
  }

  /** Logs the consumer's notices (missed heartbeats, a consumer or stream gone) for operators. */
  private async reportStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of await messages.status()) {
      this.log(`replica ${this.replicaId}: log consumer ${status.type} ${JSON.stringify(status.data)}`);
      if (String(status.type) === 'ordered_consumer_recreated') void this.checkTrimPoint().catch((error: Error) => this.log(`replica ${this.replicaId}: reading the log trim point failed (${error.message})`));
    }
  }

  private async apply(update: CorpusUpdate): Promise<void> {
    if (update.op === 'upsert') {
      if (update.dim !== this.index.dim) throw new DimensionMismatchError(`Expected embeddings of dim ${this.index.dim} but the update has dim ${update.dim}`);
      await this.index.upsert(update.ids, update.vectors!, update.attributes);
    } else if (update.op === 'remove') {
      await this.index.remove(update.ids);
    } else {
      await this.index.setAttributes(update.ids, update.attributes!);
    }
  }

  private afterApply(): void {
    for (const waiter of this.waiters) if (this.appliedSeq >= waiter.seq) waiter.wake();
    if (this.healthState === 'catching-up' && this.appliedSeq >= this.startTarget && !this.trainer) {
      this.healthState = 'serving';
      this.log(`replica ${this.replicaId} of shard ${this.shard} caught up at sequence ${this.appliedSeq}`);
      void this.registration?.refresh();
    }
  }

  /** Stores the message on the dead-letter subject before the replica moves past it, so nothing is lost; retried until stored or closing. */
  private async deadLetter(m: JsMsg, error: unknown): Promise<void> {
    const reason = error instanceof CangenError ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
    this.dead++;
    this.log(`replica ${this.replicaId}: log message ${m.seq} of shard ${this.shard} dead-lettered (${reason})`);
    const h = headers();
    h.set('Cangen-Sequence', String(m.seq));
    h.set('Cangen-Shard', String(this.shard));
    h.set('Cangen-Replica', this.replicaId);
    h.set('Cangen-Reason', reason.slice(0, 1000).replace(/[\r\n]/g, ' '));
    // One dead letter per log message, however many replicas reject it (JetStream de-duplicates by msgID).
    const msgID = `${this.names.cluster}-${this.shard}-${m.seq}`;
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        await this.js.publish(this.names.deadLetterSubject(this.shard), m.data, { headers: h, msgID });
        return;
      } catch (publishError) {
        this.log(`replica ${this.replicaId}: dead letter not stored yet (${(publishError as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      }
    }
  }

  private async answer(msg: Msg): Promise<void> {
    this.searchCount++;
    try {
      const request = decodeSearchRequest(msg.data);
      const dim = request.scorer ? this.scorerOrThrow().userDim : this.index.dim;
      if (request.dim !== dim) throw new DimensionMismatchError(`Expected ${request.scorer ? 'users' : 'queries'} of dim ${dim} but received dim ${request.dim}`);
      if (request.minApplied > this.appliedSeq && !(await this.waitApplied(request.minApplied, request.waitMs))) {
        throw new ClusterError('ERR_CLUSTER', `Replica ${this.replicaId} of shard ${this.shard} has applied sequence ${this.appliedSeq}, not ${request.minApplied}, after waiting ${request.waitMs} ms`);
      }
      const applied = this.appliedSeq;
      const threads = this.options.searchThreads ?? 0;
      const results = request.scorer
        ? await this.scorerOrThrow().search(request.queries, request.k, {
          threads, ...request.scorer, ...(request.filter ? { eligible: await this.index.filter(request.filter) } : {}),
        })
        : await this.index.search(request.queries, request.k, { threads, ...(request.filter ? { filter: request.filter } : {}) });
      msg.respond(encodeSearchReply(results, applied));
    } catch (error) {
      msg.respond(encodeErrorReply(error));
    }
  }

  private scorerOrThrow(): LearnedScorer {
    if (!this.scorer) throw new ClusterError('ERR_CLUSTER', `Replica ${this.replicaId} of shard ${this.shard} has no learned scorer (start it with one: ShardReplica option scorer, cangen shard --scorer DIR)`);
    return this.scorer;
  }

  /** Leaves the cluster: deregisters, stops consuming and answering, waits for searches in flight, closes the index. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.healthState = 'stopping';
    clearInterval(this.snapshots?.timer);
    await this.registration?.stop();
    this.subscription?.unsubscribe();
    this.messages?.stop();
    await this.applying.catch(() => undefined);
    await this.snapshots?.taking?.catch(() => undefined);
    await this.snapshots?.lease?.release().catch(() => undefined);
    await Promise.allSettled([...this.answering]);
    for (const waiter of this.waiters) waiter.wake();
    this.scorer?.close();
    this.index.close();
  }
}

/** The stream sequence of the last message on `subject`, 0 when there is none. */
async function lastSequence(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  try {
    return (await jsm.streams.getMessage(stream, { last_by_subj: subject })).seq;
  } catch (error) {
    if (/no message found|not found/i.test((error as Error).message)) return 0;
    if (isTransient(error)) throw error;
    throw new ClusterError('ERR_CLUSTER', `Could not read the last sequence of '${subject}' in stream '${stream}' (${(error as Error).message}): is the cluster initialised?`);
  }
}

function directory(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid('a directory path', 'options.snapshots.dir', value);
  return value;
}

function checkSnapshotOptions(options: SnapshotOptions): SnapshotOptions {
  const o = knownOptions(options, 'replica options.snapshots', ['everyMs', 'keep', 'leaseMs', 'dir', 'trimLog']);
  if (o.trimLog !== undefined && typeof o.trimLog !== 'boolean') throw invalid('true or false', 'options.snapshots.trimLog', o.trimLog);
  return {
    everyMs: integerIn(o.everyMs ?? 300_000, 'options.snapshots.everyMs', 0, 86_400_000),
    keep: integerIn(o.keep ?? 2, 'options.snapshots.keep', 1, 1000),
    ...(o.leaseMs !== undefined ? { leaseMs: integerIn(o.leaseMs, 'options.snapshots.leaseMs', 100, 86_400_000) } : {}),
    ...(o.dir !== undefined ? { dir: directory(o.dir) } : {}),
    ...(o.trimLog ? { trimLog: true } : {}),
  };
}
