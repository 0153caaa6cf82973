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
 * Until index snapshots exist (a later slice), a replica's index starts empty and every start
 * replays the shard's whole log from its first message; with snapshots it will start at the
 * snapshot's sequence + 1. The position lives in the replica (its applied sequence), not in a
 * server-side cursor.
 */
import { randomBytes } from 'node:crypto';
import { headers, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type Msg, type NatsConnection, type Subscription } from 'nats';
import { AdIndex } from '../ad-index';
import { CangenError, ClosedError, DimensionMismatchError } from '../errors';
import { integerIn, knownOptions } from '../validate';
import { ClusterError } from './errors';
import { MemberRegistration, membersBucket, type MemberEntry, type ReplicaHealth } from './membership';
import { checkName, clusterNames, type ClusterNames } from './names';
import { readShardMap, type ShardMap } from './shard-map';
import { decodeSearchRequest, encodeErrorReply, encodeSearchReply } from './search-codec';
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
}

export class ShardReplica {
  readonly shard: number;
  readonly replicaId: string;
  readonly index: AdIndex;
  private appliedSeq = 0;
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
  private closing = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly names: ClusterNames,
    readonly map: ShardMap,
    private readonly startTarget: number,
    private readonly options: ReplicaOptions,
    private readonly log: (line: string) => void,
  ) {
    this.shard = options.shard;
    this.replicaId = options.replicaId;
    this.index = options.index ?? new AdIndex({ dim: map.dim, metric: map.metric });
    if (startTarget === 0) this.healthState = 'serving';
  }

  /** Joins the cluster: replays the shard's log, registers, and answers searches. Resolves once subscribed (it may still be catching up). */
  static async start(nc: NatsConnection, options: ReplicaOptions): Promise<ShardReplica> {
    knownOptions(options, 'replica options', ['cluster', 'shard', 'replicaId', 'index', 'heartbeatMs', 'searchThreads', 'prefetch', 'pullExpiresMs', 'startTimeoutMs', 'log']);
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
    const replica = new ShardReplica(nc, nc.jetstream(), names, map, target, options, log);
    try {
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
    // The index starts empty, so the replica starts at the shard's first message.
    const consumer = await patiently('creating the log consumer', () => this.js.consumers.get(this.names.logStream, {
      filterSubjects: this.names.shardSubject(this.shard),
      opt_start_seq: 1,
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
    };
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
    };
  }

  private async applyAll(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      // Below the applied sequence: a message seen before a consumer reset, applied already.
      if (m.seq > this.appliedSeq) {
        try {
          await this.apply(decodeUpdate(m.data));
          this.updates++;
        } catch (error) {
          if (this.closing || error instanceof ClosedError) return;
          await this.deadLetter(m, error);
        }
        this.appliedSeq = m.seq;
        this.pending = m.info.pending;
        this.appliedStoredAt = m.info.timestampNanos / 1e6;
      }
      this.afterApply();
    }
  }

  /** Logs the consumer's notices (missed heartbeats, a consumer or stream gone) for operators. */
  private async reportStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of await messages.status()) {
      this.log(`replica ${this.replicaId}: log consumer ${status.type} ${JSON.stringify(status.data)}`);
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
    if (this.healthState === 'catching-up' && this.appliedSeq >= this.startTarget) {
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
      if (request.dim !== this.index.dim) throw new DimensionMismatchError(`Expected queries of dim ${this.index.dim} but received dim ${request.dim}`);
      if (request.minApplied > this.appliedSeq && !(await this.waitApplied(request.minApplied, request.waitMs))) {
        throw new ClusterError('ERR_CLUSTER', `Replica ${this.replicaId} of shard ${this.shard} has applied sequence ${this.appliedSeq}, not ${request.minApplied}, after waiting ${request.waitMs} ms`);
      }
      const applied = this.appliedSeq;
      const threads = this.options.searchThreads ?? 0;
      const results = await this.index.search(request.queries, request.k, { threads, ...(request.filter ? { filter: request.filter } : {}) });
      msg.respond(encodeSearchReply(results, applied));
    } catch (error) {
      msg.respond(encodeErrorReply(error));
    }
  }

  /** Leaves the cluster: deregisters, stops consuming and answering, waits for searches in flight, closes the index. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.healthState = 'stopping';
    await this.registration?.stop();
    this.subscription?.unsubscribe();
    this.messages?.stop();
    await this.applying.catch(() => undefined);
    await Promise.allSettled([...this.answering]);
    for (const waiter of this.waiters) waiter.wake();
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
