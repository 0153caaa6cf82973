/**
 * The cangen HTTP service (Fastify): retrieve, feedback, corpus upsert and delete (token
 * required), health, readiness and Prometheus metrics. Bodies are schema-checked with unknown
 * fields rejected; errors are JSON { error: { code, message } } with a 4xx or 5xx status.
 * User events (POST /v1/events, token required) go to the user-history store (lib/history; its
 * health is part of readiness). Feedback takes only request ids this service signed (feedback-guard.ts); past maxInFlight
 * requests the API answers 503; a client that hangs up aborts its request's searches.
 * SECURITY.md is the threat model. stop() drains: readiness turns 503, the listener stays open for drainDelayMs, then closes;
 * in-flight requests finish, learned state is saved.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HistoryEvent, UserHistoryStore } from '../history';
import type { CandidateEngine } from '../orchestration/engine';
import type { FeedbackType, RetrieveRequest, RetrieveResult } from '../orchestration/types';
import type { ServiceConfig } from './config';
import { FeedbackGuard } from './feedback-guard';
import { bearerGuard, createHttpApp } from './http-app';
import { openServiceHistories } from './history';
import { ServiceMetrics } from './metrics';
import { deleteSchema, eventsSchema, feedbackSchema, historySchema, retrieveSchema, upsertSchema } from './schemas';

export interface CangenService {
  app: FastifyInstance;
  metrics: ServiceMetrics;
  /** Listens; resolves to the bound address (http://host:port). */
  start(): Promise<string>;
  /** Drains in-flight requests, saves state, closes the history store, frees the engine. Safe to call twice. */
  stop(): Promise<void>;
}

type Id = string | number;
const toId = (id: Id) => BigInt(id);
const floats = (values: number[] | undefined) => (values ? Float32Array.from(values) : undefined);

const number = (x: number) => (Number.isFinite(x) ? String(x) : 'null');
const quoted = new Map<string, string>();
/** JSON string literal; names (scenarios, generators) repeat, so theirs are kept. */
function str(s: string): string {
  let q = quoted.get(s);
  if (q === undefined) {
    q = JSON.stringify(s);
    if (quoted.size < 1024) quoted.set(s, q);
  }
  return q;
}

/**
 * The retrieve answer as JSON, written directly from the pipeline's result: ad ids (bigint) as
 * strings, no intermediate objects per candidate. Same shape as retrieveSchema's 200 response.
 */
export function serializeRetrieve(r: RetrieveResult): string {
  let out = `{"requestId":${str(r.requestId)},"scenario":${str(r.scenario)},"k":${r.k},"ms":${number(r.ms)},"quotas":{`;
  let first = true;
  for (const name in r.quotas) {
    out += `${first ? '' : ','}${str(name)}:${r.quotas[name]}`;
    first = false;
  }
  out += '},"candidates":[';
  const c = r.candidates;
  for (let i = 0; i < c.length; i++) {
    const x = c[i]!;
    out += `${i ? ',' : ''}{"adId":"${x.adId}","source":${str(x.source)},"score":${number(x.score)},"rank":${x.rank}}`;
  }
  out += '],"generators":[';
  const g = r.generators;
  for (let i = 0; i < g.length; i++) {
    const x = g[i]!;
    out += `${i ? ',' : ''}{"name":${str(x.name)},"status":"${x.status}","quota":${x.quota},"returned":${x.returned},"kept":${x.kept},"ms":${number(x.ms)}${x.error === undefined ? '' : `,"error":${JSON.stringify(x.error)}`}${x.missingShards === undefined ? '' : `,"partial":true,"missingShards":[${x.missingShards.join(',')}]`}}`;
  }
  return `${out}]}`;
}

/**
 * `histories`: the user-history store (the service closes it at stop); none given, start() opens
 * the one the configuration names (openServiceHistories).
 */
export function createService(engine: CandidateEngine, config: ServiceConfig, drainTimeoutMs = 10_000, histories?: UserHistoryStore): CangenService {
  const metrics = new ServiceMetrics();
  const http = createHttpApp({
    log: config.log,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    maxInFlight: config.maxInFlight,
    onError: (route, code) => metrics.errors.inc({ route, code }),
  });
  const { app, fail } = http;
  let stopped: Promise<void> | undefined;
  engine.pipeline.onRetrieve((r) => metrics.observeRetrieve(r));
  engine.pipeline.onFeedback((e) => metrics.observeFeedback(e));
  metrics.watchCorpus(() => engine.corpus.stats());
  metrics.watchBatching(() => ({ behavioural: engine.embeddings.batching, content: engine.content.corpus.batching }));
  metrics.watchHistories(() => histories);
  const { tokenIs, require: tokenFor } = bearerGuard(config.token, fail);
  if (config.feedbackSecret === undefined) {
    process.emitWarning('No feedbackSecret configured: request ids are signed with a random secret of this process, so feedback for them is refused by any other replica or after a restart. Set CANGEN_FEEDBACK_SECRET (the same on every replica).', 'CangenWarning');
  }
  const guard = new FeedbackGuard({ secret: config.feedbackSecret, maxAgeMs: config.feedbackMaxAgeMs, rate: config.feedbackRate, burst: config.feedbackBurst, dedupeSize: config.feedbackDedupeSize });

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });

  // Corpus writes and user histories need `Authorization: Bearer <token>` (checked before the body is read).
  const requireToken = tokenFor('corpus writes');
  const requireHistoryToken = tokenFor('user histories');

  app.post<{ Body: Omit<RetrieveRequest, 'features' | 'eligibility'> & { features?: { embedding?: number[]; shortTerm?: number[]; text?: string; geo?: string; categories?: string[]; history?: { items: (string | number)[]; actions?: string[]; times?: number[] } }; eligibility?: { categories?: string[]; excludeAdvertisers?: string[]; excludeAds?: Id[] } } }>(
    '/v1/retrieve',
    {
      schema: retrieveSchema(engine.dim, config),
      // The 200 answer is written by serializeRetrieve (the schema documents it); errors by JSON.stringify.
      serializerCompiler: ({ httpStatus }: { httpStatus?: string }) => (httpStatus === '200' ? (serializeRetrieve as (data: unknown) => string) : (data: unknown) => JSON.stringify(data)),
    },
    async (request, reply) => {
      const b = request.body;
      const history = b.features?.history;
      for (const key of ['actions', 'times'] as const) {
        if (history?.[key] && history[key].length !== history.items.length) {
          return fail(reply, 400, 'ERR_INVALID_ARGUMENT', `Expected features.history.${key} to have one entry per item (${history.items.length}) but it has ${history[key].length}`);
        }
      }
      // A client that goes away before its answer stops the request's searches (native ones too).
      const abandoned = new AbortController();
      reply.raw.once('close', () => reply.raw.writableFinished || abandoned.abort());
      const result = await engine.retrieve({
        signal: abandoned.signal,
        userId: b.userId,
        scenario: b.scenario,
        k: b.k,
        deadlineMs: b.deadlineMs,
        readAfter: b.readAfter,
        features: b.features && {
          ...b.features,
          embedding: floats(b.features.embedding),
          shortTerm: floats(b.features.shortTerm),
          history: history && { ...history, items: history.items.map(String) },
        },
        eligibility: b.eligibility && { ...b.eligibility, excludeAds: b.eligibility.excludeAds?.map(toId) },
      });
      // Feedback must name an id this service signed (the pipeline's own ids are a guessable counter).
      result.requestId = guard.signer.sign(result.requestId);
      return result;
    },
  );

  app.post<{ Body: { events: { requestId: string; adId: Id; type: FeedbackType }[] } }>('/v1/feedback', { schema: feedbackSchema(config.feedbackMaxEvents) }, async (request, reply) => {
    const events = request.body.events;
    // The token's holder (a trusted producer) has a budget of its own; everyone else, one per address.
    const client = tokenIs(request.headers.authorization) ? 'token' : `ip:${request.ip}`;
    const waitSeconds = guard.admit(client, events.length);
    if (waitSeconds > 0) {
      metrics.feedbackRejected.inc({ reason: 'rate_limited' }, events.length);
      return fail(reply.header('retry-after', String(waitSeconds)), 429, 'ERR_RATE_LIMITED', `Too many feedback events from this client: at most ${config.feedbackRate} per second (${config.feedbackBurst} at once); retry after ${waitSeconds} s`);
    }
    const valid: { requestId: string; adId: bigint; type: FeedbackType }[] = [];
    let duplicates = 0;
    let rejected = 0;
    for (const e of events) {
      const adId = toId(e.adId);
      const checked = guard.check(e.requestId, adId, e.type);
      if ('id' in checked) {
        valid.push({ requestId: checked.id, adId, type: e.type });
        continue;
      }
      metrics.feedbackRejected.inc({ reason: checked.reason });
      if (checked.reason === 'duplicate') duplicates++;
      else rejected++;
    }
    return { ...engine.feedback(valid), duplicates, rejected };
  });

  app.put<{ Body: { ads: ({ id: Id; embedding?: number[] } & Record<string, unknown>)[] } }>(
    '/v1/ads',
    { schema: upsertSchema(engine.dim), onRequest: requireToken },
    async (request) => {
      const ads = request.body.ads.map((a) => ({ ...a, id: toId(a.id), embedding: floats(a.embedding) }));
      const outcome = await engine.upsertAds(ads);
      return { upserted: ads.length, ...outcome };
    },
  );

  app.delete<{ Body: { ids: Id[] } }>('/v1/ads', { schema: deleteSchema, onRequest: requireToken }, async (request) => {
    const removed = await engine.removeAds(request.body.ids.map(toId));
    // For readAfter: a sequence that includes this remove.
    return { removed, seq: engine.writtenThrough };
  });

  /** The history store, or a 503 answer while there is none (before start()). */
  const store = (reply: FastifyReply): UserHistoryStore | undefined => {
    if (!histories) void fail(reply, 503, 'ERR_HISTORY_UNAVAILABLE', 'The user-history store is not open yet: the service is starting');
    return histories;
  };
  /** A failed store call: counted, then answered by the error handler. */
  const storeFailed = (operation: string, error: unknown): never => {
    const code = (error as { code?: string }).code ?? 'ERR_INTERNAL';
    if (code !== 'ERR_INVALID_ARGUMENT') metrics.historyErrors.inc({ operation, code });
    throw error;
  };

  app.post<{ Body: { events: (Omit<HistoryEvent, 'item'> & { item: string | number })[] } }>(
    '/v1/events',
    { schema: eventsSchema, onRequest: requireHistoryToken },
    async (request, reply) => {
      const events = request.body.events;
      if (events.length > config.eventsMaxBatch) {
        return fail(reply, 413, 'ERR_BATCH_TOO_LARGE', `A batch holds at most ${config.eventsMaxBatch} events (eventsMaxBatch) but this one has ${events.length}: split it`);
      }
      const target = store(reply);
      if (!target) return reply;
      // JSON integers name the same item as their decimal string.
      const batch = events.map((e) => (typeof e.item === 'number' ? { ...e, item: BigInt(e.item) } : (e as HistoryEvent)));
      const result = await target.append(batch).catch((error) => storeFailed('append', error));
      metrics.historyEvents.inc(result.appended);
      return result;
    },
  );

  app.get<{ Params: { userId: string }; Querystring: { limit?: string } }>(
    '/v1/users/:userId/history',
    { schema: historySchema, onRequest: requireHistoryToken },
    async (request, reply) => {
      const target = store(reply);
      if (!target) return reply;
      const limit = request.query.limit === undefined ? undefined : Number(request.query.limit);
      const batch = await target.recent(request.params.userId, limit).catch((error) => storeFailed('read', error));
      return { userId: request.params.userId, events: batch.eventsOf(0) };
    },
  );

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (http.draining) return reply.code(503).send({ status: 'draining' });
    const failure = engine.corpus.failure;
    if (failure) return reply.code(503).send({ status: 'corpus failed', reason: failure });
    const history = histories?.health() ?? { healthy: false, reason: 'not open yet' };
    if (!history.healthy) return reply.code(503).send({ status: 'history store unavailable', reason: history.reason });
    return { status: 'ready', ads: engine.store.size, scenarios: engine.pipeline.scenarios.names };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const saver = config.saveIntervalMs > 0 && config.stateFile
    ? setInterval(() => engine.saveState().catch((error) => app.log.error(error)), config.saveIntervalMs).unref()
    : undefined;

  // Background upkeep of the corpus: compaction past the dead-slot threshold, then a snapshot when
  // anything changed since the last one (so a restart replays little). One round at a time.
  let upkeep: Promise<void> = Promise.resolve();
  const maintain = () =>
    (upkeep = upkeep.then(async () => {
      try {
        const compacted = await engine.corpus.compact(config.compactDeadShare);
        if (compacted.length > 0) app.log.info({ compacted }, 'corpus compacted');
        const s = engine.corpus.stats();
        if (s.durable && s.head > s.snapshotSeq) await engine.corpus.snapshot();
      } catch (error) {
        app.log.error(error);
      }
    }));
  const snapshotter = config.snapshotIntervalMs > 0 ? setInterval(maintain, config.snapshotIntervalMs).unref() : undefined;

  return {
    app,
    metrics,
    async start() {
      // Without request logs, the store's trouble (a damaged snapshot passed over, Redis lost) is still seen.
      histories ??= await openServiceHistories(config, (line, level) => {
        if (config.log) app.log[level](line);
        else if (level === 'warn') process.emitWarning(line, 'CangenWarning');
      });
      return app.listen({ host: config.host, port: config.port });
    },
    stop() {
      stopped ??= (async () => {
        http.drain();
        if (saver) clearInterval(saver);
        if (snapshotter) clearInterval(snapshotter);
        // Readiness is 503 from now on; the listener stays open while load balancers notice.
        if (config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, config.drainDelayMs));
        // In-flight requests finish; connections still busy after the grace period are cut.
        const grace = setTimeout(() => app.server.closeAllConnections(), drainTimeoutMs).unref();
        await app.close();
        clearTimeout(grace);
        // The in-process store writes its last snapshot; a failure is logged, the rest of the shutdown goes on.
        await histories?.close().catch((error) => app.log.error(error));
        await engine.saveState();
        await upkeep;
        if (engine.corpus.stats().durable) await engine.corpus.snapshot();
        await engine.close();
      })();
      return stopped;
    },
  };
}
