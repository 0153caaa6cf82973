/**
 * The HTTP framework cangen's two servers share: the candidate service (server.ts) and the
 * cluster router (lib/cluster/router-http.ts). Fastify with strict bodies (no coercion, unknown
 * fields refused), every error answered as JSON { error: { code, message } } with a status chosen
 * by its code, 404 for unknown routes, load shedding on /v1/ routes past maxInFlight, the rest of
 * a body answered before it was read dropped (so the client sees the answer), Connection: close
 * while draining, and the bearer-token check for guarded routes.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CangenError } from '../errors';
import { discardBody } from './discard-body';

/** A body answered before it was read is dropped up to this size (or 4 x bodyLimit) and time; past that the connection is cut. */
const discardBytes = 16 * 1024 * 1024;
const discardMs = 10_000;

export interface HttpAppOptions {
  /** Log requests (pino, JSON lines). */
  log: boolean;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Take the client address from X-Forwarded-For. */
  trustProxy: boolean;
  /** Requests on /v1/ routes served at once; more are answered 503 with Retry-After. */
  maxInFlight: number;
  /** Hears every error answer (for an errors counter). */
  onError?: (route: string, code: string) => void;
}

export interface HttpApp {
  app: FastifyInstance;
  /** Answers with `status` and { error: { code, message } }. */
  fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply;
  /** From now on every answer closes its connection (a stop in progress), so close() need not wait for idle keep-alives. */
  drain(): void;
  readonly draining: boolean;
}

/** HTTP status for an error code: caller mistakes are 4xx, the rest 5xx. */
export function statusOf(code: string): number {
  switch (code) {
    case 'ERR_UNKNOWN_SCENARIO':
      return 404;
    case 'ERR_INVALID_ARGUMENT':
    case 'ERR_DIMENSION_MISMATCH':
    case 'ERR_NON_FINITE':
    case 'ERR_DUPLICATE_ID':
    case 'ERR_UNKNOWN_HEAD':
      return 400;
    case 'ERR_CLOSED':
    case 'ERR_HISTORY_UNAVAILABLE':
    case 'ERR_CATALOG':
    case 'ERR_CORPUS_FAILED':
    // The sharded corpus: no shard map yet, or JetStream not storing or answering (lib/cluster/errors.ts).
    case 'ERR_NO_SHARD_MAP':
    case 'ERR_CLUSTER':
      return 503;
    case 'ERR_ABORTED':
      return 499; // the client went away; nobody reads this answer
    case 'ERR_EMBEDDER':
      return 502;
    default:
      return 500;
  }
}

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const app = Fastify({
    logger: options.log,
    bodyLimit: options.bodyLimit,
    // Strict bodies: no type coercion, and unknown fields are errors rather than silently dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    forceCloseConnections: 'idle',
    trustProxy: options.trustProxy,
  });
  let draining = false;
  const fail = (reply: FastifyReply, status: number, code: string, message: string) => {
    options.onError?.(reply.request.routeOptions.url ?? 'unknown', code);
    return reply.code(status).send({ error: { code, message } });
  };

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number; validation?: unknown }, _request, reply) => {
    if (error.validation) return fail(reply, 400, 'ERR_VALIDATION', `Invalid request: ${error.message}`);
    if (error instanceof CangenError) return fail(reply, statusOf(error.code), error.code, error.message);
    // The rest of an oversize or unsupported body is read and dropped (onSend), so the client sees this answer.
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, 413, 'ERR_BODY_TOO_LARGE', `Request body is larger than ${options.bodyLimit} bytes`);
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return fail(reply, 415, 'ERR_MEDIA_TYPE', 'Expected content-type application/json');
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return fail(reply, 400, 'ERR_MALFORMED_JSON', `Malformed JSON body: ${error.message}`);
    }
    if (error.statusCode && error.statusCode < 500) return fail(reply, error.statusCode, error.code ?? 'ERR_BAD_REQUEST', error.message);
    reply.request.log.error(error);
    return fail(reply, 500, 'ERR_INTERNAL', 'Internal error');
  });
  app.setNotFoundHandler((request, reply) => fail(reply, 404, 'ERR_NOT_FOUND', `No route ${request.method} ${request.url}`));
  app.addHook('onSend', async (request, reply) => {
    if (draining) reply.header('connection', 'close');
    // Answered before the body was read (413, a refused token): the rest of it is read and dropped first.
    if (!request.raw.complete) await discardBody(request.raw, Math.max(4 * options.bodyLimit, discardBytes), discardMs);
  });
  // Load shedding: past maxInFlight requests on the API routes, answer 503 at once (before the body is parsed).
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    if (inFlight >= options.maxInFlight) {
      return fail(reply.header('retry-after', '1'), 503, 'ERR_OVERLOADED', `The service is busy (${options.maxInFlight} requests in flight); retry after 1 s`);
    }
    inFlight++;
    reply.raw.once('close', () => inFlight--);
  });
  return {
    app,
    fail,
    drain: () => {
      draining = true;
    },
    get draining() {
      return draining;
    },
  };
}

export interface BearerGuard {
  /** Whether an Authorization header carries the token (compared in constant time). */
  tokenIs(header: string | undefined): boolean;
  /**
   * An onRequest hook requiring `Authorization: Bearer <token>`, checked on the headers before the
   * body is read; without a configured token the routes are disabled (403). `what` names them in the answers.
   */
  require(what: string): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
}

export function bearerGuard(token: string | undefined, fail: HttpApp['fail']): BearerGuard {
  const expected = token ? Buffer.from(token) : undefined;
  const tokenIs = (header: string | undefined) => {
    const given = header?.startsWith('Bearer ') ? Buffer.from(header.slice(7)) : undefined;
    return expected !== undefined && given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
  };
  return {
    tokenIs,
    require: (what) => async (request, reply) => {
      if (!expected) return fail(reply, 403, 'ERR_WRITES_DISABLED', `${what[0]!.toUpperCase()}${what.slice(1)} are disabled: start the service with a token (CANGEN_TOKEN)`);
      const header = request.headers.authorization;
      if (!header?.startsWith('Bearer ')) return fail(reply.header('www-authenticate', 'Bearer'), 401, 'ERR_UNAUTHORIZED', `Expected an Authorization: Bearer <token> header for ${what}`);
      if (!tokenIs(header)) return fail(reply, 403, 'ERR_FORBIDDEN', 'The token is not valid');
      return undefined;
    },
  };
}
