import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine } from '../lib/orchestration';
import { createService, historyStoreOptions, loadConfig, type CangenService, type ServiceConfig } from '../lib/service';
import { httpCall } from './helpers/http';
import { rejects } from './helpers/rejects';
import { RedisServer, redisServerMissing } from './helpers/redis-server';

const token = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${token}` };
const feedbackSecret = 'feedback-secret-0123456789abcdef-0123';

/** A service with an empty corpus and one popularity scenario: these tests only need its history routes. */
async function startService(overrides: Partial<ServiceConfig>): Promise<{ service: CangenService; base: string }> {
  const config = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim: 4, drainDelayMs: 0, saveIntervalMs: 0, token, feedbackSecret, ...overrides } });
  const engine = new CandidateEngine({ dim: 4, scenarios: [{ name: 's', generators: ['popularity'] }] });
  const service = createService(engine, config);
  try {
    return { service, base: await service.start() };
  } catch (error) {
    await engine.close();
    throw error;
  }
}

const call = (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = auth) => httpCall(base, method, path, body, headers);

/** A metric's value in the Prometheus text (the line that starts with `series`). */
async function metric(base: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const settings = suite('history settings');

settings('environment variables, defaults and bad values', () => {
  const env = { CANGEN_HISTORY_STORE: 'redis', CANGEN_REDIS_URL: 'redis://h:6379/2', CANGEN_HISTORY_LENGTH: '64', CANGEN_HISTORY_TTL_SECONDS: '3600', CANGEN_EVENTS_MAX_BATCH: '50', CANGEN_REDIS_PREFIX: 'app:' };
  const config = loadConfig({ env });
  assert.equal(historyStoreOptions(config), { kind: 'redis', url: 'redis://h:6379/2', prefix: 'app:', maxEvents: 64, ttlSeconds: 3600, log: undefined });
  assert.is(config.eventsMaxBatch, 50);
  assert.is(config.sequenceSessionBytes, 256 * 2 ** 20);
  assert.is(loadConfig({ env: { CANGEN_SEQUENCE_SESSION_BYTES: '0' } }).sequenceSessionBytes, 0);
  const underData = historyStoreOptions(loadConfig({ env: { CANGEN_DATA_DIR: '/data', CANGEN_HISTORY_MAX_USERS: '10' } }));
  assert.equal(underData, { kind: 'memory', maxEvents: 200, maxUsers: 10, snapshotFile: join('/data', 'user-histories.bin'), snapshotIntervalMs: 60_000, log: undefined });
  assert.is((historyStoreOptions(loadConfig({ env: {} })) as { snapshotFile?: string }).snapshotFile, undefined);
  assert.is((historyStoreOptions(loadConfig({ env: { CANGEN_DATA_DIR: '/data', CANGEN_HISTORY_FILE: '/elsewhere/h.bin' } })) as { snapshotFile?: string }).snapshotFile, '/elsewhere/h.bin');
  const bad: [Record<string, string>, RegExp][] = [
    [{ CANGEN_HISTORY_STORE: 'redis' }, /redis:\/\/ URL \(CANGEN_REDIS_URL\) for historyStore 'redis' for redisUrl/],
    [{ CANGEN_HISTORY_STORE: 'disk' }, /'memory' or 'redis' for historyStore \(from environment variable CANGEN_HISTORY_STORE\)/],
    [{ CANGEN_REDIS_URL: 'http://u:pw@h' }, /redis:\/\/ or rediss:\/\/ URL for redisUrl .* "http:\/\/u:\*\*\*@h"/],
    [{ CANGEN_HISTORY_LENGTH: '0' }, /integer between 1 and 100000 for historyLength/],
    [{ CANGEN_EVENTS_MAX_BATCH: 'lots' }, /eventsMaxBatch \(from environment variable CANGEN_EVENTS_MAX_BATCH\)/],
    [{ CANGEN_SEQUENCE_SESSION_BYTES: '-1' }, /integer between 0 and \d+ for sequenceSessionBytes/],
  ];
  for (const [variables, pattern] of bad) {
    try {
      loadConfig({ env: variables });
      assert.unreachable(JSON.stringify(variables));
    } catch (error) {
      assert.is((error as { code?: string }).code, 'ERR_CONFIG');
      assert.match((error as Error).message, pattern);
    }
  }
});

settings.run();

const memory = suite('events route with the in-process store, over HTTP on loopback');
let dir: string;
let svc: CangenService;
let base: string;
let overrides: Partial<ServiceConfig>;

memory.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cangen-events-'));
  overrides = { dataDir: join(dir, 'data'), historyLength: 4, eventsMaxBatch: 5, bodyLimit: 4096 };
  ({ service: svc, base } = await startService(overrides));
});
memory.after(async () => {
  await svc.stop();
  await rm(dir, { recursive: true, force: true });
});

memory('events in, history out: arrival order, most recent historyLength kept, unknown users empty, metrics', async () => {
  const posted = await call(base, 'POST', '/v1/events', {
    events: [
      { userId: 'alice', item: 'sku-1', action: 'view', time: 10 },
      { userId: 'alice', item: 42, action: 'click', time: 11.5 },
      { userId: 'bob', item: '42', time: 12 },
    ],
  });
  assert.is(posted.status, 200, posted.text);
  assert.equal(posted.json, { appended: 3, users: 2 });
  await call(base, 'POST', '/v1/events', { events: [1, 2, 3].map((n) => ({ userId: 'alice', item: `later-${n}`, time: 20 + n })) });
  const alice = await call(base, 'GET', '/v1/users/alice/history');
  assert.is(alice.status, 200, alice.text);
  assert.equal(alice.json, {
    userId: 'alice',
    events: [{ item: '42', action: 'click', time: 11.5 }, { item: 'later-1', action: '', time: 21 }, { item: 'later-2', action: '', time: 22 }, { item: 'later-3', action: '', time: 23 }],
  });
  const last = await call(base, 'GET', '/v1/users/alice/history?limit=1');
  assert.equal(last.json.events, [{ item: 'later-3', action: '', time: 23 }]);
  assert.equal((await call(base, 'GET', `/v1/users/${encodeURIComponent('nobody here')}/history`)).json, { userId: 'nobody here', events: [] });
  assert.equal((await call(base, 'GET', '/v1/users/bob/history')).json.events, [{ item: '42', action: '', time: 12 }]);
  assert.is(await metric(base, 'cangen_history_events_total'), 6);
  assert.is(await metric(base, 'cangen_history_store_up'), 1);
  assert.is((await call(base, 'GET', '/readyz')).status, 200);
});

memory('bad events: 400 naming the field, 413 past the batch or body limit, token required; nothing of a refused batch stored', async () => {
  const good = { userId: 'carol', item: 'x', time: 1 };
  const cases: [unknown, number, string, RegExp][] = [
    [{ events: [good, { item: 'x', time: 1 }] }, 400, 'ERR_VALIDATION', /events\/1 must have required property 'userId'/],
    [{ events: [good, { userId: 'carol', item: 'x', time: -1 }] }, 400, 'ERR_VALIDATION', /events\/1\/time must be >= 0/],
    [{ events: [good, { userId: 'carol', item: 'x', time: '1' }] }, 400, 'ERR_VALIDATION', /events\/1\/time must be number/],
    [{ events: [good, { userId: 'carol', time: 1 }] }, 400, 'ERR_VALIDATION', /events\/1 must have required property 'item'/],
    [{ events: [good, { userId: 'carol', item: -3, time: 1 }] }, 400, 'ERR_VALIDATION', /events\/1\/item/],
    [{ events: [good, { userId: 'carol', item: 'x', time: 1, extra: 1 }] }, 400, 'ERR_VALIDATION', /additional properties/],
    [{ events: [good, { userId: 'carol\u0001', item: 'x', time: 1 }] }, 400, 'ERR_VALIDATION', /events\/1\/userId/],
    [{ events: [good, { userId: 'carol\ud800', item: 'x', time: 1 }] }, 400, 'ERR_INVALID_ARGUMENT', /events\[1\]\.userId/],
    [{ events: [] }, 400, 'ERR_VALIDATION', /events must NOT have fewer than 1 items/],
    [{ events: Array(6).fill(good) }, 413, 'ERR_BATCH_TOO_LARGE', /at most 5 events \(eventsMaxBatch\) but this one has 6: split it/],
    [{ events: [{ ...good, item: 'y'.repeat(5000) }] }, 413, 'ERR_BODY_TOO_LARGE', /larger than 4096 bytes/],
  ];
  for (const [body, status, code, pattern] of cases) {
    const r = await call(base, 'POST', '/v1/events', body);
    assert.is(r.status, status, r.text);
    assert.is(r.json.error.code, code, r.text);
    assert.match(r.json.error.message, pattern);
  }
  assert.equal((await call(base, 'GET', '/v1/users/carol/history')).json.events, []);
  const anonymous = await call(base, 'POST', '/v1/events', { events: [good] }, {});
  assert.is(anonymous.status, 401);
  assert.match(anonymous.json.error.message, /Bearer <token> header for user histories/);
  assert.is((await call(base, 'GET', '/v1/users/carol/history', undefined, { authorization: 'Bearer wrong-token-0123456789' })).status, 403);
  assert.is((await call(base, 'GET', '/v1/users/carol/history?limit=0')).status, 400);
});

memory('a restarted service keeps the histories (snapshot under dataDir at stop)', async () => {
  await call(base, 'POST', '/v1/events', { events: [{ userId: 'dave', item: 'kept', action: 'cart', time: 99 }] });
  await svc.stop();
  ({ service: svc, base } = await startService(overrides));
  assert.equal((await call(base, 'GET', '/v1/users/dave/history')).json.events, [{ item: 'kept', action: 'cart', time: 99 }]);
  assert.is((await call(base, 'GET', '/v1/users/alice/history')).json.events.length, 4);
});

memory.run();

const missing = redisServerMissing();
if (missing) console.log(`skipped: events route on Redis: ${missing}`);
const redis = suite('events route with the Redis store: replicas share histories, Redis down and back');
const redisTest = missing ? redis.skip : redis;
let server: RedisServer | undefined;
redis.before(async () => {
  if (!missing) server = await RedisServer.start();
});
redis.after(async () => {
  await server?.stop();
});

redisTest('Redis unreachable at start: start() fails with ERR_HISTORY_UNAVAILABLE naming the address', async () => {
  await rejects(startService({ historyStore: 'redis', redisUrl: 'redis://127.0.0.1:1' }), 'ERR_HISTORY_UNAVAILABLE', /Redis at redis:\/\/127\.0\.0\.1:1/);
});

redisTest('two replicas share histories; Redis down: readiness 503 with the reason, events 503, counted; back: nothing acknowledged lost', async () => {
  const config = { historyStore: 'redis' as const, redisUrl: server!.url, historyLength: 100 };
  const a = await startService(config);
  const b = await startService(config);
  try {
    const acknowledged: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(a.base, 'POST', '/v1/events', { events: [{ userId: 'erin', item: `a${i}`, time: i }] });
      assert.is(r.status, 200, r.text);
      acknowledged.push(`a${i}`);
    }
    assert.equal((await call(b.base, 'GET', '/v1/users/erin/history')).json.events.map((e: { item: string }) => e.item), acknowledged);

    await server!.kill();
    const refused = await call(b.base, 'POST', '/v1/events', { events: [{ userId: 'erin', item: 'lost?', time: 9 }] });
    assert.is(refused.status, 503, refused.text);
    assert.is(refused.json.error.code, 'ERR_HISTORY_UNAVAILABLE');
    assert.match(refused.json.error.message, /nothing was acknowledged, retry/);
    const ready = await call(b.base, 'GET', '/readyz');
    assert.is(ready.status, 503);
    assert.is(ready.json.status, 'history store unavailable');
    assert.match(ready.json.reason, /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    assert.is(await metric(b.base, 'cangen_history_errors_total{operation="append",code="ERR_HISTORY_UNAVAILABLE"}'), 1);
    assert.is(await metric(b.base, 'cangen_history_store_up'), 0);
    assert.is((await call(b.base, 'GET', '/v1/users/erin/history')).status, 503);

    await server!.start();
    const until = Date.now() + 10_000;
    while ((await call(b.base, 'GET', '/readyz')).status !== 200) {
      assert.ok(Date.now() < until, 'readiness returns once Redis is back');
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await call(b.base, 'POST', '/v1/events', { events: [{ userId: 'erin', item: 'b0', time: 10 }] });
    assert.is(after.status, 200, after.text);
    acknowledged.push('b0');
    assert.equal((await call(a.base, 'GET', '/v1/users/erin/history')).json.events.map((e: { item: string }) => e.item), acknowledged);
  } finally {
    await a.service.stop();
    await b.service.stop();
  }
});

redis.run();
