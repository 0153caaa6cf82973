/** Options of the user-history stores and their defaults, in one place. */
import { integerIn, invalid, knownOptions } from '../validate';

export const historyDefaults = {
  /** Events kept per user (the most recent). */
  maxEvents: 200,
  /** Users the in-process store holds before it drops the least recently used one. */
  maxUsers: 100_000,
  /** How often the in-process store writes its snapshot when something changed (0: only at close). */
  snapshotIntervalMs: 60_000,
  /** Key prefix of the Redis store: a user's list is `<prefix><userId>`. */
  redisPrefix: 'cangen:history:',
  /** Redis: how long to wait for a connection, and for a command's reply, before failing. */
  redisConnectTimeoutMs: 2000,
  redisCommandTimeoutMs: 2000,
  /** Redis: a user's history expires this long after its last event (0: never). */
  redisTtlSeconds: 0,
} as const;

/** Largest maxEvents and maxUsers accepted. */
export const maxEventsLimit = 100_000;
export const maxUsersLimit = 100_000_000;

export type HistoryLog = (line: string, level: 'info' | 'warn') => void;

export interface MemoryHistoryOptions {
  maxEvents?: number;
  maxUsers?: number;
  /** Where the store keeps its snapshot (loaded at open, written on a timer and at close); none: memory only. */
  snapshotFile?: string;
  snapshotIntervalMs?: number;
  /** Hears what the store did that a log should show: 'warn' for trouble (a damaged snapshot passed over, a failed write), 'info' for the rest. */
  log?: HistoryLog;
}

export interface RedisHistoryOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  maxEvents?: number;
  prefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  ttlSeconds?: number;
  /** Hears when Redis is lost ('warn') and when it is back ('info'). */
  log?: HistoryLog;
}

export function checkMemoryOptions(options: MemoryHistoryOptions | undefined) {
  knownOptions(options, 'memory history options', ['maxEvents', 'maxUsers', 'snapshotFile', 'snapshotIntervalMs', 'log']);
  const o = options ?? {};
  if (o.snapshotFile !== undefined && (typeof o.snapshotFile !== 'string' || o.snapshotFile === '')) throw invalid('a file path', 'snapshotFile', o.snapshotFile);
  return {
    maxEvents: integerIn(o.maxEvents ?? historyDefaults.maxEvents, 'maxEvents', 1, maxEventsLimit),
    maxUsers: integerIn(o.maxUsers ?? historyDefaults.maxUsers, 'maxUsers', 1, maxUsersLimit),
    snapshotIntervalMs: integerIn(o.snapshotIntervalMs ?? historyDefaults.snapshotIntervalMs, 'snapshotIntervalMs', 0, 86_400_000),
    snapshotFile: o.snapshotFile,
    log: o.log ?? (() => undefined),
  };
}

export function checkRedisOptions(options: RedisHistoryOptions) {
  const o = knownOptions(options, 'Redis history options', ['url', 'maxEvents', 'prefix', 'connectTimeoutMs', 'commandTimeoutMs', 'ttlSeconds', 'log']) as Partial<RedisHistoryOptions>;
  if (typeof o.url !== 'string' || !/^rediss?:\/\//.test(o.url)) throw invalid('a redis:// or rediss:// URL', 'url', o.url);
  const prefix = o.prefix ?? historyDefaults.redisPrefix;
  if (typeof prefix !== 'string') throw invalid('a string', 'prefix', prefix);
  return {
    url: o.url,
    maxEvents: integerIn(o.maxEvents ?? historyDefaults.maxEvents, 'maxEvents', 1, maxEventsLimit),
    prefix,
    connectTimeoutMs: integerIn(o.connectTimeoutMs ?? historyDefaults.redisConnectTimeoutMs, 'connectTimeoutMs', 1, 600_000),
    commandTimeoutMs: integerIn(o.commandTimeoutMs ?? historyDefaults.redisCommandTimeoutMs, 'commandTimeoutMs', 1, 600_000),
    ttlSeconds: integerIn(o.ttlSeconds ?? historyDefaults.redisTtlSeconds, 'ttlSeconds', 0, 10 * 365 * 86_400),
    log: o.log ?? (() => undefined),
  };
}
