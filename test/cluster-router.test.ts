/**
 * `cangen router` as a child process, in front of 3 `cangen shard` children on a real nats-server:
 * refused with a clear 503 before the cluster exists; ready once every shard serves; writes
 * through its HTTP API read back at once (readAfter) with ids and scores identical to one flat
 * AdIndex holding the same ads; bad input refused with 400 and a code; a shard with its only
 * replica killed answered partial within the deadline; learned-scorer searches equal to one scorer
 * over every ad; NATS lost: not ready, every shard missing;
 * a clean exit on SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, CorpusLog, LearnedScorer, ShardReplica, initCluster, laterPosition, shardOf, type AdAttributes, type EligibilityFilter, type LogPosition, type SearchResults } from '../lib';
import { httpCall } from './helpers/http';
import { NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';
import { routerProcess, shardProcess } from './helpers/shard-process';

const dim = 8;
const shards = 3;
const cluster = 'rt';
const token = 'router-test-token-0123456789';
const auth = { authorization: `Bearer ${token}` };
const skip = natsServerMissing();

interface Ad {
  vector: Float32Array;
  attributes: AdAttributes;
}

const test = suite('cangen router: the HTTP router process over shard processes');
const ctx = {} as { nats: NatsDeployment; nc: NatsConnection; router: ChildProcess; url: string; shardChildren: ChildProcess[]; ads: Map<bigint, Ad>; position: LogPosition; searches: number };

/** Polls `check` (an HTTP call) until it holds, at most `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Results as the router's JSON gives them: per query its real results, ids as strings. */
function asJson(r: SearchResults) {
  return Array.from(r.counts, (count, q) => ({
    ids: Array.from(r.ids.subarray(q * r.k, q * r.k + count), String),
    scores: Array.from(r.scores.subarray(q * r.k, q * r.k + count)),
  }));
}

/** One flat AdIndex holding the ads `keep` admits: the reference a sharded answer must equal. */
async function reference(queries: Float32Array, k: number, filter?: EligibilityFilter, keep: (id: bigint) => boolean = () => true) {
  const index = new AdIndex({ dim });
  try {
    const entries = [...ctx.ads].filter(([id]) => keep(id));
    const vectors = new Float32Array(entries.length * dim);
    entries.forEach(([, ad], i) => vectors.set(ad.vector, i * dim));
    if (entries.length > 0) await index.upsert(BigInt64Array.from(entries.map(([id]) => id)), vectors, entries.map(([, ad]) => ad.attributes));
    return asJson(await index.search(queries, k, filter ? { filter } : undefined));
  } finally {
    index.close();
  }
}

const rowsOf = (queries: Float32Array, width = dim) => Array.from({ length: queries.length / width }, (_, q) => Array.from(queries.subarray(q * width, (q + 1) * width)));

async function search(body: Record<string, unknown>) {
  const answer = await httpCall(ctx.url, 'POST', '/v1/search', body);
  if (answer.status === 200) ctx.searches++;
  return answer;
}

/** Upserts through the router (ids as strings: some are above 2^53) and records them for the reference. */
async function upsert(ids: bigint[], seed: number, attributes: (i: number) => AdAttributes = () => ({})): Promise<LogPosition> {
  const vectors = randomVectors(ids.length, dim, seed);
  const ads = ids.map((id, i) => ({ id: String(id), embedding: Array.from(vectors.subarray(i * dim, (i + 1) * dim)), ...attributes(i) }));
  const answer = await httpCall(ctx.url, 'PUT', '/v1/ads', { ads }, auth);
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.json.written, ids.length);
  ids.forEach((id, i) => ctx.ads.set(id, { vector: vectors.slice(i * dim, (i + 1) * dim), attributes: attributes(i) }));
  return answer.json.position as LogPosition;
}

test.before(async () => {
  if (skip) return;
  ctx.nats = await NatsDeployment.single();
  ctx.nc = await connect({ servers: ctx.nats.servers });
  ctx.shardChildren = [];
  ctx.ads = new Map();
  ctx.searches = 0;
});

test.after(async () => {
  if (skip) return;
  ctx.router?.kill('SIGKILL');
  for (const child of ctx.shardChildren) child.kill('SIGKILL');
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

test('before the cluster exists: searches and writes 503 ERR_NO_SHARD_MAP, /readyz 503, /healthz 200', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  // Started before the shard map exists: it looks for one every second.
  ({ child: ctx.router, url: ctx.url } = await routerProcess(ctx.nats.servers, cluster, ['--deadline-ms', '2000', '--drain-delay-ms', '0'], { CANGEN_TOKEN: token }));
  const found = await search({ queries: [Array(dim).fill(1)], k: 5 });
  assert.is(found.status, 503);
  assert.is(found.json.error.code, 'ERR_NO_SHARD_MAP');
  assert.match(found.json.error.message, /cluster 'rt'.*KV bucket 'cangen_rt_config'.*initialise the cluster/);
  const write = await httpCall(ctx.url, 'PUT', '/v1/ads', { ads: [{ id: 1, embedding: Array(dim).fill(1) }] }, auth);
  assert.is(write.status, 503);
  assert.is(write.json.error.code, 'ERR_NO_SHARD_MAP');
  const ready = await httpCall(ctx.url, 'GET', '/readyz');
  assert.is(ready.status, 503);
  assert.is(ready.json.status, 'no shard map');
  assert.is((await httpCall(ctx.url, 'GET', '/healthz')).status, 200);
});

test('/readyz: 503 naming the shards while none serves, 200 ready once every shard serves', async () => {
  if (skip) return;
  await initCluster(ctx.nc, { cluster, shards, dim, membershipTtlMs: 1500 });
  await eventually(async () => (await httpCall(ctx.url, 'GET', '/readyz')).json?.status === 'shards without a serving replica', 5000, 'the router finding the shard map');
  assert.equal((await httpCall(ctx.url, 'GET', '/readyz')).json.shards, [0, 1, 2]);
  // Half of the ads are in the log before the shards start (they replay it), half are written after.
  ctx.position = await upsert(Array.from({ length: 300 }, (_, i) => BigInt(i + 1)), 1, (i) => ({ category: i % 4, active: i % 7 !== 0 }));
  ctx.shardChildren = await Promise.all(Array.from({ length: shards }, (_, s) => shardProcess(ctx.nats.servers, cluster, s, `s${s}`)));
  await eventually(async () => (await httpCall(ctx.url, 'GET', '/readyz')).json?.status === 'ready', 10_000, '/readyz ready');
  assert.equal((await httpCall(ctx.url, 'GET', '/readyz')).json, { status: 'ready', cluster, shards, dim, metric: 'ip' });
});

test('writes through the router read back at once: identical to one AdIndex holding every ad', async () => {
  if (skip) return;
  const big = (1n << 62n) + 12345n;
  ctx.position = laterPosition(ctx.position, await upsert(Array.from({ length: 300 }, (_, i) => big + BigInt(i)), 2, (i) => ({ category: i % 4, advertiser: i % 5 })));
  const queries = randomVectors(4, dim, 3);
  for (const k of [1, 10, 100]) {
    const answer = await search({ queries: rowsOf(queries), k, readAfter: ctx.position });
    assert.is(answer.status, 200, answer.text);
    assert.is(answer.json.partial, false);
    assert.equal(answer.json.missingShards, []);
    assert.equal(answer.json.results, await reference(queries, k), `k ${k}`);
    assert.equal(answer.json.shards.map((s: { replicaId: string }) => s.replicaId), ['s0', 's1', 's2']);
  }
  // Replaced embeddings, removes and attribute changes, each read at once through its position.
  const replaced = [5n, 6n, big + 7n];
  let position = await upsert(replaced, 4, () => ({ category: 2 }));
  const removed = [10n, 11n, 12n, big + 1n, big + 2n];
  const remove = await httpCall(ctx.url, 'DELETE', '/v1/ads', { ids: removed.map(String) }, auth);
  assert.is(remove.status, 200, remove.text);
  removed.forEach((id) => ctx.ads.delete(id));
  position = laterPosition(position, remove.json.position);
  const paused = [20n, 21n, big + 3n];
  const attributes = await httpCall(ctx.url, 'PUT', '/v1/ads/attributes', { ads: paused.map((id) => ({ id: String(id), active: false, category: 3 })) }, auth);
  assert.is(attributes.status, 200, attributes.text);
  paused.forEach((id) => (ctx.ads.get(id)!.attributes = { active: false, category: 3 }));
  position = laterPosition(position, attributes.json.position);
  ctx.position = laterPosition(ctx.position, position);
  const someIds = [big + 3n, 20n, 30n, big + 9n];
  // Each filter as JSON for the router, and as the reference index takes it (ids as bigints).
  const filters: [Record<string, unknown> | undefined, EligibilityFilter | undefined][] = [
    [undefined, undefined],
    [{ active: true, categories: [2, 3] }, { active: true, categories: [2, 3] }],
    [{ ids: someIds.map(String) }, { ids: someIds }],
  ];
  for (const [filter, same] of filters) {
    const answer = await search({ queries: rowsOf(queries), k: 50, readAfter: position, ...(filter ? { filter } : {}) });
    assert.is(answer.status, 200, answer.text);
    assert.is(answer.json.partial, false);
    assert.equal(answer.json.results, await reference(queries, 50, same), JSON.stringify(filter));
  }
});

test('bad input: 400 with a code (and 401 for a write without the token), nothing fanned out', async () => {
  if (skip) return;
  const query = Array(dim).fill(0.5);
  const cases: [string, Record<string, unknown> | string, string][] = [
    ['a query of another dim', { queries: [query, query.slice(1)], k: 5 }, 'ERR_DIMENSION_MISMATCH'],
    ['no k', { queries: [query] }, 'ERR_VALIDATION'],
    ['k of 0', { queries: [query], k: 0 }, 'ERR_VALIDATION'],
    ['an unknown field', { queries: [query], k: 5, nprobe: 4 }, 'ERR_VALIDATION'],
    ['an unknown filter field', { queries: [query], k: 5, filter: { geo: 3 } }, 'ERR_VALIDATION'],
    ['a readAfter that is not shard -> sequence', { queries: [query], k: 5, readAfter: { x: 1 } }, 'ERR_VALIDATION'],
    ['a string for a number', { queries: [query.map(String)], k: 5 }, 'ERR_VALIDATION'],
    ['malformed JSON', '{"queries": [[1', 'ERR_MALFORMED_JSON'],
  ];
  for (const [what, body, code] of cases) {
    const answer = await search(body as Record<string, unknown>);
    assert.is(answer.status, 400, `${what}: ${answer.text}`);
    assert.is(answer.json.error.code, code, what);
  }
  // No replica of this cluster has a learned scorer: a scorer search is refused before any fan-out.
  const scorer = await search({ queries: [query], k: 5, scorer: { scenario: 'feed' } });
  assert.is(scorer.status, 503, scorer.text);
  assert.is(scorer.json.error.code, 'ERR_CLUSTER');
  assert.match(scorer.json.error.message, /cangen shard --scorer DIR/);
  const twice = await httpCall(ctx.url, 'PUT', '/v1/ads', { ads: [{ id: 7, embedding: query }, { id: '7', embedding: query }] }, auth);
  assert.is(twice.status, 400);
  assert.is(twice.json.error.code, 'ERR_DUPLICATE_ID');
  const wrongDim = await httpCall(ctx.url, 'PUT', '/v1/ads', { ads: [{ id: 7, embedding: query.slice(1) }, { id: 8, embedding: [...query, 1] }] }, auth);
  assert.is(wrongDim.status, 400);
  assert.is(wrongDim.json.error.code, 'ERR_DIMENSION_MISMATCH');
  const anonymous = await httpCall(ctx.url, 'DELETE', '/v1/ads', { ids: [1] });
  assert.is(anonymous.status, 401);
  assert.is(anonymous.json.error.code, 'ERR_UNAUTHORIZED');
  assert.ok(ctx.ads.has(1n));
  const wrongToken = await httpCall(ctx.url, 'DELETE', '/v1/ads', { ids: [1] }, { authorization: `Bearer ${token.replace('0', '9')}` });
  assert.is(wrongToken.status, 403);
  assert.is((await httpCall(ctx.url, 'GET', '/v1/nothing')).json.error.code, 'ERR_NOT_FOUND');
});

test('every replica of a shard killed: partial within the deadline with that shard listed, the others exact; /readyz 200 partial', async () => {
  if (skip) return;
  const victim = ctx.shardChildren[1];
  assert.ok(victim, 'the shard processes started');
  const exited = new Promise((resolve) => victim.once('exit', resolve));
  victim.kill('SIGKILL');
  await exited;
  const queries = randomVectors(3, dim, 5);
  const deadlineMs = 300;
  for (const wait of ['its entry still registered', 'its entry expired']) {
    if (wait === 'its entry expired') await eventually(async () => (await httpCall(ctx.url, 'GET', '/readyz')).json?.status === 'partial', 5000, '/readyz partial after the membership TTL');
    const started = Date.now();
    const answer = await search({ queries: rowsOf(queries), k: 20, deadlineMs });
    const ms = Date.now() - started;
    assert.is(answer.status, 200, answer.text);
    assert.is(answer.json.partial, true, wait);
    assert.equal(answer.json.missingShards, [1]);
    assert.ok(answer.json.shards[1].error, wait);
    assert.ok(ms < deadlineMs + 250, `${wait}: answered in ${ms} ms`);
    assert.equal(answer.json.results, await reference(queries, 20, undefined, (id) => shardOf(id, shards) !== 1), wait);
  }
  // Still ready (the other shards answer), and saying which shard is missing.
  const ready = await httpCall(ctx.url, 'GET', '/readyz');
  assert.is(ready.status, 200);
  assert.equal(ready.json, { status: 'partial', unservedShards: [1], cluster, shards, dim, metric: 'ip' });
  // The router's metrics count what this test saw.
  const metrics = (await httpCall(ctx.url, 'GET', '/metrics')).text;
  assert.match(metrics, new RegExp(`\\ncangen_router_searches_total ${ctx.searches}\\n`));
  assert.match(metrics, /\ncangen_router_partial_answers_total 2\n/);
  assert.match(metrics, /\ncangen_router_search_duration_seconds_count\{answer="partial"\} 2\n/);
  assert.match(metrics, /\ncangen_router_http_errors_total\{route="\/v1\/search",code="ERR_VALIDATION"\} 6\n/);
});

test('a learned-scorer search through the router equals one scorer over every ad', async () => {
  if (skip) return;
  const mol: Config = {
    format: 'cangen-scorer', version: 1, kind: 'mol', userDim: 10, itemDim: 12, heads: ['click', 'conversion'],
    mol: { queryComponents: 3, itemComponents: 2, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
    scenarios: { feed: { click: 1, conversion: 0.5 }, shop: { click: 0.2, conversion: 1 } }, defaultScenario: 'feed',
  };
  const model = writeModel(mol, randomTensors(mol));
  const single = new AdIndex({ dim: mol.itemDim });
  const reference = await LearnedScorer.load(model);
  const replicas: ShardReplica[] = [];
  let learned: { child: ChildProcess; url: string } | undefined;
  try {
    await reference.attach(single);
    await initCluster(ctx.nc, { cluster: 'rtl', shards: 2, dim: mol.itemDim });
    const ids = BigInt64Array.from({ length: 400 }, (_, i) => BigInt(5000 + i));
    const vectors = randomVectors(ids.length, mol.itemDim, 11);
    const position = await (await CorpusLog.open(ctx.nc, 'rtl')).upsert(ids, vectors);
    await single.upsert(ids, vectors);
    for (const shard of [0, 1]) {
      const replica = await ShardReplica.start(ctx.nc, { cluster: 'rtl', shard, replicaId: `l${shard}`, snapshots: false, scorer: await LearnedScorer.load(model) });
      replicas.push(replica);
      assert.ok(await replica.waitApplied(position[shard]!, 10_000));
    }
    learned = await routerProcess(ctx.nats.servers, 'rtl', ['--deadline-ms', '3000', '--drain-delay-ms', '0']);
    await eventually(async () => (await httpCall(learned!.url, 'GET', '/readyz')).status === 200, 10_000, 'the scorer router ready');
    const users = randomVectors(3, mol.userDim, 12);
    const ask = (scorer: unknown, k: number, queries = rowsOf(users, mol.userDim)) => httpCall(learned!.url, 'POST', '/v1/search', { queries, k, scorer });
    for (const [blend, k] of [[{ scenario: 'shop' }, 25], [{}, 10], [{ weights: { click: 0.3, conversion: 2 } }, 40]] as const) {
      const answer = await ask(blend, k);
      assert.is(answer.status, 200, answer.text);
      assert.is(answer.json.partial, false);
      assert.equal(answer.json.results, asJson(await reference.search(users, k, blend)), JSON.stringify(blend));
    }
    const unknownScenario = await ask({ scenario: 'nope' }, 5);
    assert.is(unknownScenario.status, 404);
    assert.is(unknownScenario.json.error.code, 'ERR_UNKNOWN_SCENARIO');
    const unknownHead = await ask({ weights: { views: 1 } }, 5);
    assert.is(unknownHead.status, 400);
    assert.is(unknownHead.json.error.code, 'ERR_UNKNOWN_HEAD');
    // Queries of the index's dim are not users of the scorer's.
    const itemDimQueries = await ask({}, 5, [Array.from(randomVectors(1, mol.itemDim, 13))]);
    assert.is(itemDimQueries.status, 400);
    assert.is(itemDimQueries.json.error.code, 'ERR_DIMENSION_MISMATCH');
  } finally {
    learned?.child.kill('SIGKILL');
    for (const replica of replicas) await replica.close();
    reference.close();
    single.close();
  }
});

test('NATS lost: /readyz 503 at once, searches partial with every shard missing by the deadline; SIGTERM still exits 0', async () => {
  if (skip) return;
  await ctx.nats.nodes[0]!.kill();
  await eventually(async () => (await httpCall(ctx.url, 'GET', '/readyz')).json?.status === 'nats disconnected', 2000, '/readyz reporting NATS lost');
  const started = Date.now();
  const answer = await search({ queries: [Array(dim).fill(1)], k: 5, deadlineMs: 200 });
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.json.partial, true);
  assert.equal(answer.json.results, [{ ids: [], scores: [] }]);
  assert.ok(Date.now() - started < 450, `answered in ${Date.now() - started} ms`);
  assert.equal(answer.json.missingShards, [0, 1, 2], JSON.stringify(answer.json.shards));
  // The drain does not wait for NATS to come back.
  const exited = new Promise<number | null>((resolve) => ctx.router.once('exit', (code) => resolve(code)));
  ctx.router.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
  assert.is(code, 0);
});

test.run();
