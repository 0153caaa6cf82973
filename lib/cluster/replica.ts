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
import { headers, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type KV, type Msg, type NatsConnection, type Subscription } from 'nats';
import { AdIndex, CompiledFilter } from '../ad-index';
import type { LearnedScorer } from '../scorer';
import { CangenError, ClosedError, DimensionMismatchError } from '../errors';
import { integerIn, knownOptions } from '../validate';
import { ClusterError } from './errors';
import { FilterCache } from './filter-cache';
import { readTrimPoint } from './log-trim';
import { checkTrainOptions, LogTrainer, type HeldMessage, type TrainOptions } from './log-trainer';
import { MemberRegistration, membersBucket, type MemberEntry, type ReplicaHealth } from './membership';
import { checkName, clusterNames, type ClusterNames } from './names';
import { readShardMap, type ShardMap } from './shard-map';
import { decodeSearchRequest, encodeErrorReply, encodeSearchReply } from './search-codec';
import { checkSnapshotOptions, ShardSnapshots, type ReplicaView, type SnapshotOptions } from './shard-snapshots';
import type { SnapshotManifest } from './snapshots';
import { isTransient, retryTransient } from './transient';
import { decodeUpdate, type CorpusUpdate } from './update-codec';

export interface ReplicaOptions {
  cluster: string;
  shard: number;
  /** Unique among the cluster's replicas (letters, digits, '_', '-'): names its consumer, entry and search subject. */
  replicaId: string;
  /** The shard's index, empty (any kind; an untrained IVF index trains from the log, see train); default a flat index of the shard map's dim and metric. Closed by close(). */
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

export class ShardReplica {
  readonly shard: number;
  readonly replicaId: string;
  readonly index: AdIndex;
  private readonly filters: FilterCache;
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
  /** A check of the log's trim point after the log consumer was re-created: applying waits for it. */
  private trimCheck: Promise<void> | undefined;
  private applying: Promise<void> = Promise.resolve();
  /** Applying a log message and saving a snapshot take turns here, so a snapshot includes exactly the applied sequence. */
  private turn: Promise<unknown> = Promise.resolve();
  private closing = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  /** What the snapshots see of this replica. */
  private readonly view: ReplicaView;

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
    private readonly snapshots: ShardSnapshots | undefined,
    /** Present while the IVF index waits for enough ads from the log to train on. */
    private trainer: LogTrainer | undefined,
    private readonly registration: MemberRegistration,
  ) {
    this.shard = options.shard;
    this.replicaId = options.replicaId;
    this.index = index;
    this.filters = new FilterCache(index);
    this.scorer = options.scorer;
    this.appliedSeq = snapshots?.startedFrom ?? 0;
    this.view = { index, applied: () => this.appliedSeq, snapshottable: () => !this.trainer, exclusive: (task) => this.exclusive(task) };
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
    // Registered (not serving: routers pass it over) before the log's trim point is read: the log
    // is never trimmed past a registered replica's applied sequence, so nothing this replica will
    // replay after its snapshot can be purged while it loads one (docs/CLUSTER.md, Bounding the log).
    const heartbeat = options.heartbeatMs ?? Math.max(50, Math.floor(map.membershipTtlMs / 3));
    const bucket = await patiently('binding the members bucket', () => membersBucket(nc, map.cluster));
    let entryOf = (): MemberEntry => ({
      replicaId: options.replicaId, shard: options.shard, subject: names.searchSubject(options.replicaId), applied: 0, health: 'catching-up',
      inflight: 0, lagMessages: 0, deadLetters: 0, updatedAt: Date.now(),
    });
    const registration = new MemberRegistration(bucket, () => entryOf(), heartbeat, log);
    await patiently('registering', () => registration.start());
    const context = { nc, config, names, shard: options.shard, replicaId: options.replicaId, streamReplicas: map.streamReplicas, log, patiently };
    const expect = options.index ?? { kind: 'flat', dim: map.dim, metric: map.metric };
    let opened;
    try {
      opened = await ShardSnapshots.open(snapshotOptions, context, { kind: expect.kind, dim: expect.dim, metric: expect.metric, threads: options.index?.threads });
    } catch (error) {
      await registration.stop();
      options.index?.close(); // handed over to the replica, which does not start
      throw error;
    }
    const { snapshots } = opened;
    let index = options.index;
    if (opened.index) {
      index?.close(); // the caller handed it over; the snapshot's index takes its place
      index = opened.index;
    }
    const shardIndex = index ?? new AdIndex({ dim: map.dim, metric: map.metric });
    const trainer = shardIndex.isTrained ? undefined : new LogTrainer(trainOptions, map.dim);
    const replica = new ShardReplica(nc, nc.jetstream(), names, config, map, target, options, log, shardIndex, snapshots, trainer, registration);
    entryOf = () => replica.entry();
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
    void this.registration.refresh(); // the entry as it is now (applied, health) rather than at the next beat
    const everyMs = this.snapshots?.options.everyMs ?? 0;
    if (everyMs > 0) {
      this.snapshotTimer = setInterval(() => void this.periodicCheck(), everyMs);
      this.snapshotTimer.unref();
    }
  }

  get applied(): number {
    return this.appliedSeq;
  }

  get health(): ReplicaHealth {
    return this.healthState;
  }

  stats(): ReplicaStats {
    const newest = this.snapshots?.newestKnown;
    return {
      applied: this.appliedSeq, startTarget: this.startTarget, health: this.healthState, updatesApplied: this.updates,
      lagMessages: this.pending, lagSeconds: this.pending > 0 ? Math.max(0, (Date.now() - this.appliedStoredAt) / 1000) : 0,
      deadLetters: this.dead, searches: this.searchCount, inflight: this.answering.size,
      heldForTraining: this.trainer?.heldMessages ?? 0, startedFromSnapshot: this.snapshots?.startedFrom ?? 0,
      snapshotFallbacks: this.snapshots?.fallbacks ?? 0, snapshotsTaken: this.snapshots?.takenCount ?? 0, snapshotSequence: newest?.sequence ?? -1,
      snapshotAgeSeconds: newest ? Math.max(0, (Date.now() - newest.createdAt) / 1000) : -1,
    };
  }

  /**
   * Snapshots the index now, whoever holds the lease, and keeps the newest `keep`. Applying waits
   * while the file is saved (searches go on); the upload runs beside it. Resolves with the
   * manifest, or undefined when the newest snapshot already includes every applied message.
   */
  snapshot(): Promise<SnapshotManifest | undefined> {
    if (!this.snapshots) return Promise.reject(new ClusterError('ERR_SNAPSHOT', `Replica ${this.replicaId} was started with snapshots: false`));
    if (this.closing) return Promise.reject(new ClosedError(`Replica ${this.replicaId} is closing`));
    return this.snapshots.take(this.view);
  }

  /**
   * A replica below the log's trim point would skip purged updates without noticing: checked when
   * the log consumer is re-created and at every periodic check; such a replica leaves the cluster.
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

  /** Every snapshot interval, while serving: the trim point, then a snapshot when this replica holds the lease. */
  private async periodicCheck(): Promise<void> {
    if (this.closing || this.healthState !== 'serving') return;
    try {
      await this.checkTrimPoint();
      if (!this.closing) await this.snapshots!.tick(this.view);
    } catch (error) {
      if (!this.closing) this.log(`replica ${this.replicaId}: snapshot of shard ${this.shard} failed (${(error as Error).message}); next try in ${this.snapshots!.options.everyMs} ms`);
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

  /** This replica's membership entry, as the registration writes it every heartbeat. */
  entry(): MemberEntry {
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
      if (this.trimCheck) await this.trimCheck;
      if (this.closing) return;
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
      void this.registration.refresh();
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
    this.filters.clear();
    for (const message of trainer.release()) {
      if (!(await this.applyMessage(message.msg, message))) return false;
    }
    return true;
  }

  /** Logs the consumer's notices (missed heartbeats, a consumer or stream gone) for operators. */
  private async reportStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of await messages.status()) {
      this.log(`replica ${this.replicaId}: log consumer ${status.type} ${JSON.stringify(status.data)}`);
      if (String(status.type) === 'ordered_consumer_recreated') {
        // Resumed after an interruption (a lost connection, a server failover): the log may have been
        // trimmed past this replica meanwhile. Nothing more is applied until that is ruled out.
        const check: Promise<void> = this.checkTrimPoint()
          .catch((error: Error) => this.log(`replica ${this.replicaId}: reading the log trim point failed (${error.message})`))
          .finally(() => { if (this.trimCheck === check) this.trimCheck = undefined; });
        this.trimCheck = check;
      }
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
      void this.registration.refresh();
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
      const filter = request.filter ? await this.filters.get(request.filter) : undefined;
      const results = request.scorer
        ? await this.scorerOrThrow().search(request.queries, request.k, {
          threads, ...request.scorer, ...(filter ? { eligible: filter instanceof CompiledFilter ? filter : await this.index.filter(filter) } : {}),
        })
        : await this.index.search(request.queries, request.k, { threads, ...(filter ? { filter } : {}) });
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
    clearInterval(this.snapshotTimer);
    await this.registration.stop();
    this.subscription?.unsubscribe();
    this.messages?.stop();
    await this.applying.catch(() => undefined);
    await this.snapshots?.stop();
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

