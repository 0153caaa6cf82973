/**
 * The router's HTTP surface (`cangen router`, docs/CLUSTER.md "Router"): searches fan out over
 * the shards through a ClusterRouter, writes go to the corpus log through a CorpusLog and answer
 * with the log position to read them back, plus /metrics, /healthz and /readyz. It runs on the
 * HTTP service's framework (lib/service/http-app.ts): the same strict bodies, error answers and
 * status codes, load shedding, and the same bearer token for writes. SECURITY.md says what it exposes.
 */
import { Events, type NatsConnection } from 'nats';
import { Counter } from 'prom-client';
import type { AdAttributes, BudgetState, EligibilityFilter } from '../ad-index';
import type { BlendOptions } from '../scorer';
import { DimensionMismatchError } from '../errors';
import { toIdArray } from '../ids';
import { bearerGuard, createHttpApp, type HttpApp } from '../service/http-app';
import { CorpusLog } from './corpus-log';
import { ClusterError } from './errors';
import type { LogPosition } from './log-position';
import { ClusterMetrics } from './metrics';
import type { ClusterRouter, ClusterSearchResult } from './router';
import { attributesSchema, removeSchema, searchSchema, upsertSchema } from './router-schemas';
import { noShardMap } from './shard-map';
import { isTransient } from './transient';

export interface RouterServerOptions {
  /** The cluster the router serves (its shard map and log). */
  cluster: string;
  host: string;
  port: number;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Requests on /v1/ routes served at once; more are answered 503. */
  maxInFlight: number;
  /** Bearer token for the write routes (at least 16 characters); unset: writes are refused with 403. */
  token?: string;
  /** On stop, how long /readyz answers 503 while requests are still served, before the listener closes. */
  drainDelayMs: number;
  log?: boolean;
  trustProxy?: boolean;
}

export interface RouterServer {
  http: HttpApp;
  metrics: ClusterMetrics;
  /** Listens; resolves to the bound address (http://host:port). */
  start(): Promise<string>;
  /** Why the router is cut off from NATS (disconnected, reconnecting), or undefined while connected. */
  readonly natsDown: string | undefined;
  /** Readiness 503, then drainDelayMs, then the listener closes once requests in flight finish (cut after 10 s). Safe to call twice. */
  stop(): Promise<void>;
}

type Id = string | number;
/** On stop, how long requests in flight may take after the listener closed before their connections are cut. */
const drainTimeoutMs = 10_000;
type AttributesBody = { id: Id; advertiser?: number; campaign?: number; category?: number; geo?: number; active?: boolean; budget?: BudgetState };
type FilterBody = Omit<EligibilityFilter, 'ids'> & { ids?: Id[] };
interface SearchBody {
  queries: number[][];
  k: number;
  deadlineMs?: number;
  hedgeAfterMs?: number;
  readAfter?: Record<string, number>;
  filter?: FilterBody;
  scorer?: BlendOptions;
}

/** One search's answer as JSON: per query only its real results (no -1 padding), ids as decimal strings. */
function searchAnswer(k: number, r: ClusterSearchResult) {
  const { ids, scores, counts } = r.results;
  const results = Array.from(counts, (count, q) => ({
    ids: Array.from(ids.subarray(q * r.results.k, q * r.results.k + count), String),
    scores: Array.from(scores.subarray(q * r.results.k, q * r.results.k + count)),
  }));
  return { k, partial: r.partial, missingShards: r.missingShards, ms: r.ms, results, shards: r.shards };
}

/** An ad's attributes without its id and embedding (packAttributes gives absent ones their defaults). */
function attributesOf({ id: _id, embedding: _embedding, ...rest }: AttributesBody & { embedding?: unknown }): AdAttributes {
  return rest;
}

/** Rows of the same length, as one Float32Array (a row of another length is refused even when the total fits). */
function rows(values: number[][], dim: number, what: string, whose = 'the shard map\'s'): Float32Array {
  const out = new Float32Array(values.length * dim);
  values.forEach((row, i) => {
    if (row.length !== dim) throw new DimensionMismatchError(`Expected ${dim} values (${whose} dim) for ${what}[${i}] but received ${row.length}`);
    out.set(row, i * dim);
  });
  return out;
}

export function createRouterServer(nc: NatsConnection, router: ClusterRouter, options: RouterServerOptions): RouterServer {
  const metrics = new ClusterMetrics();
  metrics.watchRouter(router);
  const labels = { registers: [metrics.registry] };
  const httpRequests = new Counter({ name: 'cangen_router_http_requests_total', help: 'HTTP requests answered, per route and status', labelNames: ['route', 'status'], ...labels });
  const httpErrors = new Counter({ name: 'cangen_router_http_errors_total', help: 'HTTP error answers, per route and error code', labelNames: ['route', 'code'], ...labels });
  const http = createHttpApp({
    log: options.log ?? false,
    bodyLimit: options.bodyLimit,
    trustProxy: options.trustProxy ?? false,
    maxInFlight: options.maxInFlight,
    onError: (route, code) => httpErrors.inc({ route, code }),
  });
  const { app } = http;
  app.addHook('onResponse', async (request, reply) => {
    httpRequests.inc({ route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  const requireToken = bearerGuard(options.token, http.fail).require('corpus writes');

  // Cut off from NATS the router can answer nothing but partial answers: not ready until it reconnects.
  let natsDown: string | undefined;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) natsDown = `disconnected from ${String(status.data)}, reconnecting`;
      else if (status.type === Events.Reconnect) natsDown = undefined;
    }
  })().catch(() => undefined);

  const knownMap = () => {
    const map = router.shardMap;
    if (!map) throw noShardMap(options.cluster);
    return map;
  };
  // The writer binds once the shard map exists; until then every write is refused with ERR_NO_SHARD_MAP.
  let log: Promise<CorpusLog> | undefined;
  const corpusLog = () => (log ??= CorpusLog.open(nc, options.cluster).catch((error: Error) => {
    log = undefined;
    if (isTransient(error)) throw new ClusterError('ERR_CLUSTER', `JetStream did not answer while opening the corpus log of cluster '${options.cluster}' (${error.message}): retry, and check the NATS servers`);
    throw error;
  }));
  const written = (n: number, position: LogPosition) => ({ written: n, position });

  app.post<{ Body: SearchBody }>('/v1/search', { schema: searchSchema }, async (request) => {
    const b = request.body;
    const map = knownMap();
    // A scorer search takes users of the scorer's dim, which ClusterRouter checks against what the replicas advertise.
    const queries = b.scorer ? rows(b.queries, b.queries[0]!.length, 'queries', 'the first query\'s') : rows(b.queries, map.dim, 'queries');
    const filter: EligibilityFilter | undefined = b.filter && { ...b.filter, ids: b.filter.ids && toIdArray(b.filter.ids.map(BigInt), 'filter.ids') };
    const result = await router.search(queries, b.k, {
      ...(b.deadlineMs !== undefined ? { deadlineMs: b.deadlineMs } : {}),
      ...(b.hedgeAfterMs !== undefined ? { hedgeAfterMs: b.hedgeAfterMs } : {}),
      ...(b.readAfter ? { readAfter: b.readAfter as LogPosition } : {}),
      ...(filter ? { filter } : {}),
      ...(b.scorer ? { scorer: b.scorer } : {}),
    });
    return searchAnswer(b.k, result);
  });

  app.put<{ Body: { ads: (AttributesBody & { embedding: number[] })[] } }>('/v1/ads', { schema: upsertSchema, onRequest: requireToken }, async (request) => {
    const ads = request.body.ads;
    const writer = await corpusLog();
    const vectors = rows(ads.map((a) => a.embedding), writer.map.dim, 'ads[].embedding');
    return written(ads.length, await writer.upsert(ads.map((a) => BigInt(a.id)), vectors, ads.map(attributesOf)));
  });

  app.put<{ Body: { ads: AttributesBody[] } }>('/v1/ads/attributes', { schema: attributesSchema, onRequest: requireToken }, async (request) => {
    const ads = request.body.ads;
    return written(ads.length, await (await corpusLog()).setAttributes(ads.map((a) => BigInt(a.id)), ads.map(attributesOf)));
  });

  app.delete<{ Body: { ids: Id[] } }>('/v1/ads', { schema: removeSchema, onRequest: requireToken }, async (request) => {
    const ids = request.body.ids;
    return written(ids.length, await (await corpusLog()).remove(ids.map((id) => BigInt(id))));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (http.draining) return reply.code(503).send({ status: 'draining' });
    if (natsDown || nc.isClosed()) return reply.code(503).send({ status: 'nats disconnected', reason: natsDown ?? 'connection closed' });
    const map = router.shardMap;
    if (!map) return reply.code(503).send({ status: 'no shard map', reason: noShardMap(options.cluster).message });
    const unserved = Array.from({ length: map.shards }, (_, shard) => shard).filter((shard) => !router.replicas(shard).some((m) => m.health === 'serving'));
    // Ready while some shard serves: an answer without one shard (flagged partial) beats none, and a
    // shard's outage must not take every router out of its load balancer at once.
    if (unserved.length === map.shards) return reply.code(503).send({ status: 'shards without a serving replica', shards: unserved });
    const about = { cluster: map.cluster, shards: map.shards, dim: map.dim, metric: map.metric };
    return unserved.length > 0 ? { status: 'partial', unservedShards: unserved, ...about } : { status: 'ready', ...about };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.text();
  });

  let stopped: Promise<void> | undefined;
  return {
    http,
    metrics,
    get natsDown() {
      return natsDown;
    },
    start: () => app.listen({ host: options.host, port: options.port }),
    stop() {
      stopped ??= (async () => {
        http.drain();
        // Readiness is 503 from now on; the listener stays open while load balancers notice.
        if (options.drainDelayMs > 0) await new Promise((r) => setTimeout(r, options.drainDelayMs));
        // Searches in flight end by their deadline; connections still busy after the grace period are cut.
        const grace = setTimeout(() => app.server.closeAllConnections(), drainTimeoutMs).unref();
        await app.close();
        clearTimeout(grace);
      })();
      return stopped;
    },
  };
}
