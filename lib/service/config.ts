/**
 * Service configuration: defaults, then a JSON file, then environment variables (each layer
 * overrides the one before). Unknown keys and bad values are ConfigErrors naming the source.
 */
import { readFileSync } from 'node:fs';
import { knownOptions } from '../validate';
import { ConfigError } from '../orchestration/errors';
import type { ScenarioConfig } from '../orchestration/scenarios';

export interface ServiceConfig {
  host: string;
  port: number;
  /** Bearer token for corpus writes (PUT/DELETE /v1/ads); writes are refused while unset. */
  token: string | undefined;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Where learned state is saved (on shutdown and every saveIntervalMs) and restored from. */
  stateFile: string | undefined;
  saveIntervalMs: number;
  /** Embedding dimension of ads and users. */
  dim: number;
  /** 'simulator': start with the simulator's marketplace (the demo); 'empty': fill it through PUT /v1/ads. */
  corpus: 'simulator' | 'empty';
  /**
   * Where the corpus keeps its catalog (SQLite) and index snapshots: every acknowledged write to
   * /v1/ads survives a restart. Unset: the corpus lives in memory and is lost at exit.
   */
  dataDir: string | undefined;
  /** 'power' (default): each write is fsynced. 'process': survives a crash of the service, not of the machine. */
  durability: 'power' | 'process';
  /** Snapshot the indexes this often when the corpus changed (and at shutdown); 0: only at shutdown. */
  snapshotIntervalMs: number;
  /** Compact an index in the background once this share of its slots is dead (checked with each snapshot). */
  compactDeadShare: number;
  /** Ads of the simulator corpus. */
  ads: number;
  /** 'flat' (exact) or a FAISS factory string such as 'IVF1024,Flat'. */
  index: string;
  /**
   * What the exact indexes (the content index, and the behavioural one when `index` is 'flat')
   * scan first: 'fp32', 'bf16' or 'int8'. Reduced scans re-rank in fp32 what a proven bound cannot
   * rule out, so answers do not change; they cost an extra 2 (bf16) or 1 (int8) byte per value.
   */
  precision: 'fp32' | 'bf16' | 'int8';
  /** Threads per index search (0: every core; 1 gives the most throughput under concurrent load). */
  threads: number;
  /**
   * Search effort of the behavioural index. IVF kinds: clusters probed per query (AdIndex widens it
   * for filters that admit few ads). HNSW: the search beam width. Ignored by kind 'flat'.
   */
  nprobe: number;
  efSearch: number;
  /** 'learned' or 'static'. */
  allocator: 'learned' | 'static';
  scenarios: ScenarioConfig[] | undefined;
  /** Content embeddings: 'hashed' (local) or an OpenAI-compatible endpoint. */
  embedder: { kind: 'hashed'; dim: number } | { kind: 'openai'; baseUrl: string; model: string; dim: number; apiKeyEnv?: string };
  /** Log requests (pino, JSON lines). */
  log: boolean;
  /** HMAC-SHA256 secret that signs request ids (at least 32 characters; replicas must share it). Unset: random per process. */
  feedbackSecret: string | undefined;
  /** Feedback naming a request older than this is refused. */
  feedbackMaxAgeMs: number;
  /** Events per feedback body. */
  feedbackMaxEvents: number;
  /** Feedback events per second per client (IP address, or the token's holder), and the burst saved up. */
  feedbackRate: number;
  feedbackBurst: number;
  /** (request, ad, type) triples remembered to apply each once. */
  feedbackDedupeSize: number;
  /** Per retrieve request: the largest k and deadline, query text length, names per list (categories, excluded advertisers), excluded ads. */
  maxK: number;
  maxDeadlineMs: number;
  maxTextLength: number;
  maxFilterNames: number;
  maxExcludeAds: number;
  /** Requests on /v1 routes being served at once; more are answered 503 with Retry-After. */
  maxInFlight: number;
  /** Compiled filters kept per corpus (each distinct geo, categories and excluded advertisers tuple is one). */
  filterCacheSize: number;
  /** Query texts whose embeddings are kept, and embedder calls per second for new ones (0: no limit). */
  embedderCacheSize: number;
  embedderCallsPerSecond: number;
  /**
   * Cross-request batching of index searches: concurrent searches with the same filter share one
   * native call, at most batchMaxSize of them, none waiting over batchMaxDelayMs for the call in
   * flight. Off: one call per search (the behaviour before batching, for comparisons).
   */
  batching: boolean;
  batchMaxSize: number;
  batchMaxDelayMs: number;
  /** Calls per index running at once before searches queue (0: the thread budget, one per core the process may use). */
  batchMaxInFlight: number;
  /** Take the client address from X-Forwarded-For (behind a proxy you trust). */
  trustProxy: boolean;
  /** On shutdown, how long readiness answers 503 while requests are still served, before the listener closes. */
  drainDelayMs: number;
  /** Where user histories (POST /v1/events) live: 'memory' (this process, snapshots in historyFile) or 'redis' (redisUrl; shared by replicas). */
  historyStore: 'memory' | 'redis';
  /** redis://[user:password@]host:port[/db] of the history store 'redis'. */
  redisUrl: string | undefined;
  /** Key prefix of the users' lists in Redis. */
  redisPrefix: string;
  /** Events kept per user (the most recent). */
  historyLength: number;
  /** Users the 'memory' store keeps; past it the least recently used is dropped. */
  historyMaxUsers: number;
  /** Snapshot of the 'memory' store; unset: <dataDir>/user-histories.bin when dataDir is set, else histories are lost at exit. */
  historyFile: string | undefined;
  /** How often the 'memory' store writes its snapshot when it changed (and at shutdown); 0: only at shutdown. */
  historySnapshotIntervalMs: number;
  /** 'redis' store: a user's history expires this long after its last event (0: never). */
  historyTtlSeconds: number;
  /** Events per POST /v1/events body. */
  eventsMaxBatch: number;
  /**
   * A trained user model (a directory written by `cangen train --out`): adds the 'sequence'
   * generator, which encodes each user's stored history (POST /v1/events) or the request's
   * `features.history`. Its dim must be the service's dim, and the ads' embeddings its item embeddings.
   */
  sequenceModel: string | undefined;
  /**
   * What a sequence model's Mixture-of-Logits scorer scans with: 'fp32', or 'bf16' (its layers in
   * bf16, the best k x 4 per user re-scored in fp32: measured recall against fp32, not a bound;
   * docs/SCORERS.md). Other scorers ignore it.
   */
  scorerPrecision: 'fp32' | 'bf16';
  /** Bytes of per-user encoder sessions (keys and values of each layer; about 200 KiB a user at maxLen 200, dim 64, 2 layers); 0: none. */
  sequenceSessionBytes: number;
}

export const defaultConfig: ServiceConfig = {
  host: '127.0.0.1',
  port: 8080,
  token: undefined,
  bodyLimit: 1024 * 1024,
  stateFile: undefined,
  saveIntervalMs: 60_000,
  dim: 32,
  corpus: 'simulator',
  dataDir: undefined,
  durability: 'power',
  snapshotIntervalMs: 300_000,
  compactDeadShare: 0.2,
  ads: 20_000,
  index: 'flat',
  precision: 'fp32',
  threads: 1,
  nprobe: 16,
  efSearch: 64,
  allocator: 'learned',
  scenarios: undefined,
  embedder: { kind: 'hashed', dim: 256 },
  log: false,
  drainDelayMs: 5000,
  feedbackSecret: undefined,
  feedbackMaxAgeMs: 3_600_000,
  feedbackMaxEvents: 1000,
  feedbackRate: 100,
  feedbackBurst: 2000,
  feedbackDedupeSize: 200_000,
  trustProxy: false,
  maxK: 2000,
  maxDeadlineMs: 1000,
  maxTextLength: 1024,
  maxFilterNames: 100,
  maxExcludeAds: 1000,
  maxInFlight: 256,
  filterCacheSize: 256,
  embedderCacheSize: 10_000,
  embedderCallsPerSecond: 0,
  batching: true,
  batchMaxSize: 64,
  batchMaxDelayMs: 5,
  batchMaxInFlight: 0,
  historyStore: 'memory',
  redisUrl: undefined,
  redisPrefix: 'cangen:history:',
  historyLength: 200,
  historyMaxUsers: 100_000,
  historyFile: undefined,
  historySnapshotIntervalMs: 60_000,
  historyTtlSeconds: 0,
  eventsMaxBatch: 1000,
  sequenceModel: undefined,
  scorerPrecision: 'fp32',
  sequenceSessionBytes: 256 * 2 ** 20,
};

const keys = Object.keys(defaultConfig);

/** Environment variables and the config key each sets. */
export const environment: Record<string, keyof ServiceConfig> = {
  CANGEN_HOST: 'host',
  CANGEN_PORT: 'port',
  CANGEN_TOKEN: 'token',
  CANGEN_BODY_LIMIT: 'bodyLimit',
  CANGEN_STATE_FILE: 'stateFile',
  CANGEN_SAVE_INTERVAL_MS: 'saveIntervalMs',
  CANGEN_DIM: 'dim',
  CANGEN_CORPUS: 'corpus',
  CANGEN_DATA_DIR: 'dataDir',
  CANGEN_DURABILITY: 'durability',
  CANGEN_SNAPSHOT_INTERVAL_MS: 'snapshotIntervalMs',
  CANGEN_COMPACT_DEAD_SHARE: 'compactDeadShare',
  CANGEN_ADS: 'ads',
  CANGEN_INDEX: 'index',
  CANGEN_PRECISION: 'precision',
  CANGEN_THREADS: 'threads',
  CANGEN_NPROBE: 'nprobe',
  CANGEN_EF_SEARCH: 'efSearch',
  CANGEN_ALLOCATOR: 'allocator',
  CANGEN_LOG: 'log',
  CANGEN_DRAIN_DELAY_MS: 'drainDelayMs',
  CANGEN_FEEDBACK_SECRET: 'feedbackSecret',
  CANGEN_FEEDBACK_MAX_AGE_MS: 'feedbackMaxAgeMs',
  CANGEN_FEEDBACK_MAX_EVENTS: 'feedbackMaxEvents',
  CANGEN_FEEDBACK_RATE: 'feedbackRate',
  CANGEN_FEEDBACK_BURST: 'feedbackBurst',
  CANGEN_FEEDBACK_DEDUPE_SIZE: 'feedbackDedupeSize',
  CANGEN_TRUST_PROXY: 'trustProxy',
  CANGEN_MAX_K: 'maxK',
  CANGEN_MAX_DEADLINE_MS: 'maxDeadlineMs',
  CANGEN_MAX_TEXT_LENGTH: 'maxTextLength',
  CANGEN_MAX_FILTER_NAMES: 'maxFilterNames',
  CANGEN_MAX_EXCLUDE_ADS: 'maxExcludeAds',
  CANGEN_MAX_IN_FLIGHT: 'maxInFlight',
  CANGEN_FILTER_CACHE_SIZE: 'filterCacheSize',
  CANGEN_EMBEDDER_CACHE_SIZE: 'embedderCacheSize',
  CANGEN_EMBEDDER_CALLS_PER_SECOND: 'embedderCallsPerSecond',
  CANGEN_BATCHING: 'batching',
  CANGEN_BATCH_MAX_SIZE: 'batchMaxSize',
  CANGEN_BATCH_MAX_DELAY_MS: 'batchMaxDelayMs',
  CANGEN_BATCH_MAX_IN_FLIGHT: 'batchMaxInFlight',
  CANGEN_HISTORY_STORE: 'historyStore',
  CANGEN_REDIS_URL: 'redisUrl',
  CANGEN_REDIS_PREFIX: 'redisPrefix',
  CANGEN_HISTORY_LENGTH: 'historyLength',
  CANGEN_HISTORY_MAX_USERS: 'historyMaxUsers',
  CANGEN_HISTORY_FILE: 'historyFile',
  CANGEN_HISTORY_SNAPSHOT_INTERVAL_MS: 'historySnapshotIntervalMs',
  CANGEN_HISTORY_TTL_SECONDS: 'historyTtlSeconds',
  CANGEN_EVENTS_MAX_BATCH: 'eventsMaxBatch',
  CANGEN_SEQUENCE_MODEL: 'sequenceModel',
  CANGEN_SCORER_PRECISION: 'scorerPrecision',
  CANGEN_SEQUENCE_SESSION_BYTES: 'sequenceSessionBytes',
};

const integers: (keyof ServiceConfig)[] = ['port', 'bodyLimit', 'saveIntervalMs', 'snapshotIntervalMs', 'dim', 'ads', 'threads', 'nprobe', 'efSearch', 'drainDelayMs', 'feedbackMaxAgeMs', 'feedbackMaxEvents', 'feedbackRate', 'feedbackBurst', 'feedbackDedupeSize',
  'maxK', 'maxDeadlineMs', 'maxTextLength', 'maxFilterNames', 'maxExcludeAds', 'maxInFlight', 'filterCacheSize', 'embedderCacheSize', 'embedderCallsPerSecond', 'batchMaxSize', 'batchMaxInFlight',
  'historyLength', 'historyMaxUsers', 'historySnapshotIntervalMs', 'historyTtlSeconds', 'eventsMaxBatch', 'sequenceSessionBytes'];
const booleans: (keyof ServiceConfig)[] = ['log', 'trustProxy', 'batching'];
/** Keys that take any number in their range (milliseconds, shares), not only integers. */
const decimals: (keyof ServiceConfig)[] = ['compactDeadShare', 'batchMaxDelayMs'];

function bad(expected: string, key: string, source: string, value: unknown): ConfigError {
  return new ConfigError(`Expected ${expected} for ${key} (from ${source}) but received ${JSON.stringify(value)}`);
}

function check(config: ServiceConfig, source: (key: string) => string): ServiceConfig {
  const ranges: Record<string, [number, number]> = { port: [0, 65535], bodyLimit: [1024, 1 << 30], saveIntervalMs: [0, 86_400_000], snapshotIntervalMs: [0, 86_400_000], dim: [1, 65536], ads: [0, 100_000_000], threads: [0, 4096], nprobe: [1, 1 << 24], efSearch: [1, 65536], drainDelayMs: [0, 600_000], feedbackMaxAgeMs: [1000, 30 * 86_400_000], feedbackMaxEvents: [1, 100_000], feedbackRate: [1, 10_000_000], feedbackBurst: [1, 100_000_000], feedbackDedupeSize: [1000, 100_000_000],
    maxK: [1, 100_000], maxDeadlineMs: [1, 60_000], maxTextLength: [1, 1 << 20], maxFilterNames: [1, 100_000], maxExcludeAds: [0, 1_000_000], maxInFlight: [1, 1_000_000],
    filterCacheSize: [1, 1_000_000], embedderCacheSize: [0, 10_000_000], embedderCallsPerSecond: [0, 1_000_000], batchMaxSize: [1, 65_536], batchMaxInFlight: [0, 4096],
    historyLength: [1, 100_000], historyMaxUsers: [1, 100_000_000], historySnapshotIntervalMs: [0, 86_400_000], historyTtlSeconds: [0, 315_360_000], eventsMaxBatch: [1, 100_000], sequenceSessionBytes: [0, 2 ** 50] };
  for (const key of integers) {
    const v = config[key];
    const [lo, hi] = ranges[key]!;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(`an integer between ${lo} and ${hi}`, key, source(key), v);
  }
  if (typeof config.host !== 'string' || config.host === '') throw bad('a host name or address', 'host', source('host'), config.host);
  if (config.token !== undefined && (typeof config.token !== 'string' || config.token.length < 16)) throw bad('a token of at least 16 characters', 'token', source('token'), '(hidden)');
  if (!['simulator', 'empty'].includes(config.corpus)) throw bad("'simulator' or 'empty'", 'corpus', source('corpus'), config.corpus);
  if (config.dataDir !== undefined && (typeof config.dataDir !== 'string' || config.dataDir === '')) throw bad('a folder path', 'dataDir', source('dataDir'), config.dataDir);
  if (!['power', 'process'].includes(config.durability)) throw bad("'power' or 'process'", 'durability', source('durability'), config.durability);
  if (!['fp32', 'bf16', 'int8'].includes(config.precision)) throw bad("'fp32', 'bf16' or 'int8'", 'precision', source('precision'), config.precision);
  if (typeof config.compactDeadShare !== 'number' || !(config.compactDeadShare > 0 && config.compactDeadShare <= 1)) throw bad('a share in (0, 1]', 'compactDeadShare', source('compactDeadShare'), config.compactDeadShare);
  const delay = config.batchMaxDelayMs;
  if (typeof delay !== 'number' || !(delay >= 0 && delay <= 60_000)) throw bad('a number of milliseconds between 0 and 60000', 'batchMaxDelayMs', source('batchMaxDelayMs'), delay);
  if (!['learned', 'static'].includes(config.allocator)) throw bad("'learned' or 'static'", 'allocator', source('allocator'), config.allocator);
  if (typeof config.index !== 'string' || config.index === '') throw bad("'flat' or a FAISS factory string", 'index', source('index'), config.index);
  for (const key of booleans) if (typeof config[key] !== 'boolean') throw bad('true or false', key, source(key), config[key]);
  if (config.feedbackSecret !== undefined && (typeof config.feedbackSecret !== 'string' || config.feedbackSecret.length < 32)) throw bad('a secret of at least 32 characters', 'feedbackSecret', source('feedbackSecret'), '(hidden)');
  if (config.feedbackBurst < config.feedbackMaxEvents) throw bad(`at least feedbackMaxEvents (${config.feedbackMaxEvents}): a full body must fit the burst`, 'feedbackBurst', source('feedbackBurst'), config.feedbackBurst);
  checkHistory(config, source);
  const e = config.embedder as Record<string, unknown>;
  if (!e || (e.kind !== 'hashed' && e.kind !== 'openai')) throw bad("{ kind: 'hashed' | 'openai', ... }", 'embedder', source('embedder'), e);
  return config;
}

function checkHistory(config: ServiceConfig, source: (key: string) => string): void {
  if (!['memory', 'redis'].includes(config.historyStore)) throw bad("'memory' or 'redis'", 'historyStore', source('historyStore'), config.historyStore);
  const url = config.redisUrl;
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\/./.test(url))) throw bad('a redis:// or rediss:// URL', 'redisUrl', source('redisUrl'), typeof url === 'string' ? url.replace(/:[^@/]*@/, ':***@') : url);
  if (config.historyStore === 'redis' && url === undefined) throw bad("a redis:// URL (CANGEN_REDIS_URL) for historyStore 'redis'", 'redisUrl', source('redisUrl'), url);
  if (typeof config.redisPrefix !== 'string') throw bad('a string', 'redisPrefix', source('redisPrefix'), config.redisPrefix);
  if (config.historyFile !== undefined && (typeof config.historyFile !== 'string' || config.historyFile === '')) throw bad('a file path', 'historyFile', source('historyFile'), config.historyFile);
  if (config.sequenceModel !== undefined && (typeof config.sequenceModel !== 'string' || config.sequenceModel === '')) throw bad('a model directory', 'sequenceModel', source('sequenceModel'), config.sequenceModel);
  if (!['fp32', 'bf16'].includes(config.scorerPrecision)) throw bad("'fp32' or 'bf16'", 'scorerPrecision', source('scorerPrecision'), config.scorerPrecision);
}

/** Reads the file (if any) and the environment over the defaults. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Partial<ServiceConfig> } = {}): ServiceConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env.CANGEN_CONFIG;
  const sources = new Map<string, string>();
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`Could not read config file ${file}: ${(error as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ConfigError(`Expected JSON in config file ${file} but received ${JSON.stringify(text.slice(0, 40))}`);
    }
    try {
      knownOptions(fromFile, `config file ${file}`, keys);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    for (const key of Object.keys(fromFile)) sources.set(key, `config file ${file}`);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(environment)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    sources.set(key, `environment variable ${name}`);
    if (integers.includes(key)) fromEnv[key] = /^\d+$/.test(raw) ? Number(raw) : raw;
    else if (decimals.includes(key)) fromEnv[key] = /^[\d.]+$/.test(raw) ? Number(raw) : raw;
    else if (booleans.includes(key)) fromEnv[key] = raw === '1' || raw === 'true' ? true : raw === '0' || raw === 'false' ? false : raw;
    else fromEnv[key] = raw;
  }
  for (const key of Object.keys(options.overrides ?? {})) sources.set(key, 'the command line');
  const merged = { ...defaultConfig, ...fromFile, ...fromEnv, ...options.overrides } as ServiceConfig;
  return check(merged, (key) => sources.get(key) ?? 'the defaults');
}
