/**
 * The Redis user-history store, for service replicas that share histories. Each user is a list
 * `<prefix><userId>` of events newest first, one string each: `time \t action \t item` (ids hold no
 * control characters). Lists rather than streams: an exact trim (LTRIM) at the same cost as the
 * push, a compact encoding for short lists, and no stream ids we would not use; XADD with an exact
 * MAXLEN costs more and its cheap form (MAXLEN ~) keeps an approximate count.
 *
 * A batch is one MULTI/EXEC (LPUSH + LTRIM [+ EXPIRE] per user) sent as one pipelined round trip:
 * Redis applies it whole, and append() resolves only after EXEC's reply. With Redis unreachable the
 * client does not queue commands (disableOfflineQueue): the call fails at once with
 * ERR_HISTORY_UNAVAILABLE and health() reports why, while the client reconnects in the background.
 * A batch whose reply was lost with the connection may still have been applied: the caller, told
 * it failed, retries, so delivery is at least once (never an acknowledged event lost).
 */
import type { createClient } from '@redis/client';
import { BatchBuilder, type HistoryBatch } from './batch';
import { HistoryUnavailableError } from './errors';
import { checkRedisOptions, type HistoryLog, type RedisHistoryOptions } from './options';
import type { AppendResult, HistoryEvent, HistoryHealth, HistoryStats, UserHistoryStore } from './types';
import { StoreBase } from './store-base';
import { checkRead, groupEvents } from './validate-events';

/** `create` is @redis/client's createClient, loaded on first use: requiring it costs ~0.2 s, which users of the in-process store should not pay. */
function newClient(create: typeof createClient, o: ReturnType<typeof checkRedisOptions>) {
  return create({
    url: o.url,
    // Fail at once while disconnected rather than holding commands (and the caller) until Redis returns.
    disableOfflineQueue: true,
    commandOptions: { timeout: o.commandTimeoutMs },
    socket: { connectTimeout: o.connectTimeoutMs, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000) },
  });
}
type Client = ReturnType<typeof newClient>;
/** Once a command failed, health() checks Redis again (a PING) at most this often until one succeeds. */
const probeEveryMs = 1000;

/** `work`'s outcome, or a rejection saying `late` once `ms` passed without one (`work` goes on: its outcome is dropped). */
function within<T>(work: Promise<T>, ms: number, late: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(late)), ms);
  });
  work.catch(() => undefined); // a failure after the timeout was already reported
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The URL without its password, for messages and logs. */
function safeUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}

export class RedisHistoryStore extends StoreBase implements UserHistoryStore {
  readonly kind = 'redis' as const;
  readonly maxEvents: number;
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private readonly commandTimeoutMs: number;
  private readonly url: string;
  private readonly log: HistoryLog;
  /** Why the last command or connection failed, until one succeeds again. */
  private failure: string | undefined;
  private probing = false;
  private lastProbe = 0;

  private constructor(private readonly client: Client, options: ReturnType<typeof checkRedisOptions>) {
    super();
    this.maxEvents = options.maxEvents;
    this.prefix = options.prefix;
    this.ttlSeconds = options.ttlSeconds;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.url = safeUrl(options.url);
    this.log = options.log;
    client.on('error', (error: Error) => this.failed(error));
    client.on('ready', () => {
      if (this.failure !== undefined) this.log(`user-history store: Redis at ${this.url} is reachable again`, 'info');
      this.failure = undefined;
    });
  }

  /** Connects (waiting at most connectTimeoutMs); rejects with ERR_HISTORY_UNAVAILABLE when Redis cannot be reached. */
  static async open(options: RedisHistoryOptions): Promise<RedisHistoryStore> {
    const o = checkRedisOptions(options);
    const { createClient: create } = await import('@redis/client');
    const client = newClient(create, o);
    const store = new RedisHistoryStore(client, o);
    try {
      await within(client.connect(), o.connectTimeoutMs, `no connection within ${o.connectTimeoutMs} ms`);
    } catch (error) {
      client.destroy();
      throw new HistoryUnavailableError(`Could not connect to Redis at ${store.url} for user histories (${store.failure ?? (error as Error).message}): start redis-server there or set redisUrl (CANGEN_REDIS_URL) to a reachable one`);
    }
    return store;
  }

  private key(userId: string): string {
    return this.prefix + userId;
  }

  private failed(error: Error): void {
    if (this.failure === undefined) this.log(`user-history store: Redis at ${this.url} failed: ${error.message}`, 'warn');
    this.failure = error.message || error.constructor.name;
  }

  /** The client's failure as a typed error saying what was not done and what to do. */
  private unavailable(error: unknown, what: string): HistoryUnavailableError {
    this.failed(error as Error);
    return new HistoryUnavailableError(`${what}: Redis at ${this.url} is unavailable (${this.failure}); nothing was acknowledged, retry once /readyz reports ready`);
  }

  /**
   * The reply, or a rejection once commandTimeoutMs passed without one (a hung server; the client's
   * own timeout does not cover MULTI). The command may still be applied later: at least once.
   */
  private replied<T>(reply: Promise<T>): Promise<T> {
    return within(reply, this.commandTimeoutMs, `no reply within ${this.commandTimeoutMs} ms`);
  }

  async append(events: readonly HistoryEvent[]): Promise<AppendResult> {
    this.assertOpen();
    const byUser = groupEvents(events);
    if (byUser.size === 0) return { appended: 0, users: 0 };
    const multi = this.client.multi();
    for (const [userId, list] of byUser) {
      const key = this.key(userId);
      multi.lPush(key, list.map((e) => `${e.time}\t${e.action}\t${e.item}`));
      multi.lTrim(key, 0, this.maxEvents - 1);
      if (this.ttlSeconds > 0) multi.expire(key, this.ttlSeconds);
    }
    try {
      await this.replied(multi.exec());
    } catch (error) {
      throw this.unavailable(error, `Could not store ${events.length} events`);
    }
    this.failure = undefined;
    return { appended: events.length, users: byUser.size };
  }

  async recentMany(userIds: readonly string[], limit?: number): Promise<HistoryBatch> {
    this.assertOpen();
    const n = checkRead(userIds, limit, this.maxEvents);
    let lists: string[][];
    try {
      // Issued together, the reads go out as one pipeline.
      lists = await this.replied(Promise.all(userIds.map((id) => this.client.lRange(this.key(id), 0, n - 1))));
    } catch (error) {
      throw this.unavailable(error, `Could not read the histories of ${userIds.length} users`);
    }
    this.failure = undefined;
    const batch = new BatchBuilder(lists.reduce((sum, l) => sum + l.length, 0));
    for (let u = 0; u < userIds.length; u++) {
      batch.user(userIds[u]!);
      const list = lists[u]!;
      // Newest first in Redis; oldest first in the batch.
      for (let i = list.length - 1; i >= 0; i--) {
        const entry = list[i]!;
        const a = entry.indexOf('\t');
        const b = entry.indexOf('\t', a + 1);
        if (a < 0 || b < 0) continue; // not written by this store
        batch.event(entry.slice(b + 1), entry.slice(a + 1, b), Number(entry.slice(0, a)));
      }
    }
    return batch.finish();
  }

  health(): HistoryHealth {
    if (this.closed) return { healthy: false, reason: 'the store is closed' };
    if (!this.client.isReady) return { healthy: false, reason: `Redis at ${this.url} is unreachable (${this.failure ?? 'reconnecting'})` };
    if (this.failure !== undefined) {
      this.probe();
      return { healthy: false, reason: `Redis at ${this.url} failed: ${this.failure}` };
    }
    return { healthy: true };
  }

  /** After a failed command on a live connection (a timeout), a PING tells when Redis answers again. */
  private probe(): void {
    const now = Date.now();
    if (this.probing || now - this.lastProbe < probeEveryMs) return;
    this.probing = true;
    this.lastProbe = now;
    this.client.ping().then(
      () => (this.failure = undefined),
      (error: Error) => this.failed(error),
    ).finally(() => (this.probing = false));
  }

  async stats(): Promise<HistoryStats> {
    // Counting users would scan every key: Redis's own INFO keyspace says it.
    return { kind: this.kind, maxEvents: this.maxEvents, users: -1, events: -1, evictedUsers: 0, healthy: this.health().healthy };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Replies still awaited are received first; a dead connection is just dropped.
    if (this.client.isReady) await this.client.close().catch(() => this.client.destroy());
    else this.client.destroy();
  }

}
