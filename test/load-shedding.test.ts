/**
 * Load shedding (issue 13, item 11): per-request limits, the in-flight cap, cancellation of
 * abandoned requests down to the index search, the query-embedding cache and budget, and the
 * bounded cache of compiled filters.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortedError, type SearchResults } from '../lib';
import { AdIndex } from '../lib/ad-index';
import { LearnedScorer } from '../lib/scorer';
import {
  AdStore,
  CandidateEngine,
  ContentGenerator,
  EmbedderBudgetError,
  EmbeddingCorpus,
  HashedNgramEmbedder,
  Pipeline,
  Scenarios,
  StaticAllocator,
  type CandidateGenerator,
  type Embedder,
} from '../lib/orchestration';
import { createService, loadConfig } from '../lib/service';
import { randomVectors } from './helpers/random';
import { writeModel } from './helpers/scorer-model';

const limits = suite('load shedding');
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A generator that waits `ms` (or until aborted) and records when its signal aborted. */
function waitingGenerator(ms: number) {
  const seen = { started: 0, abortedAfterMs: [] as number[] };
  const generator: CandidateGenerator = {
    name: 'waits',
    async generate(input) {
      seen.started++;
      const t0 = performance.now();
      input.signal.addEventListener('abort', () => seen.abortedAfterMs.push(performance.now() - t0), { once: true });
      await new Promise((r) => setTimeout(r, ms));
      return [{ adId: 1n, score: 1 }];
    },
  };
  return { generator, seen };
}

/**
 * Times `search` whole (best of two, with a signal that never fires), then aborts it a tenth of
 * the way in: it must reject with AbortedError well before it would have finished.
 */
async function expectEarlyStop(label: string, search: (signal?: AbortSignal) => Promise<SearchResults>, nq: number, k: number) {
  await search();
  let full = Infinity;
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    const whole = await search(new AbortController().signal);
    full = Math.min(full, performance.now() - t0);
    assert.is(whole.counts[nq - 1], k, label);
  }
  const controller = new AbortController();
  const t0 = performance.now();
  setTimeout(() => controller.abort(), Math.max(5, full / 10));
  const outcome = await search(controller.signal).then(() => 'finished', (e: unknown) => e);
  const stoppedMs = performance.now() - t0;
  assert.instance(outcome, AbortedError, label);
  assert.ok(stoppedMs < full * 0.6, `${label}: aborted after ${stoppedMs.toFixed(0)} ms; the whole search takes ${full.toFixed(0)} ms`);
}

limits('per-request limits come from the config and are enforced by the schema (400)', async () => {
  const cfg = loadConfig({ env: { CANGEN_MAX_K: '50', CANGEN_MAX_DEADLINE_MS: '200', CANGEN_MAX_TEXT_LENGTH: '16', CANGEN_MAX_FILTER_NAMES: '3', CANGEN_MAX_EXCLUDE_ADS: '4' }, overrides: { port: 0, corpus: 'empty', dim: 4, drainDelayMs: 0, saveIntervalMs: 0 } });
  const engine = new CandidateEngine({ dim: 4, scenarios: [{ name: 's', generators: ['popularity'] }] });
  const s = createService(engine, cfg);
  const url = await s.start();
  try {
    const post = (body: object) => fetch(`${url}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'u', scenario: 's', ...body }) });
    const cases: [object, number][] = [
      [{ k: 50, deadlineMs: 200 }, 200],
      [{ k: 51 }, 400],
      [{ deadlineMs: 201 }, 400],
      [{ features: { text: 'x'.repeat(16) } }, 200],
      [{ features: { text: 'x'.repeat(17) } }, 400],
      [{ features: { categories: ['a', 'b', 'c', 'd'] } }, 400],
      [{ eligibility: { categories: ['a', 'b', 'c'] } }, 200],
      [{ eligibility: { excludeAdvertisers: ['a', 'b', 'c', 'd'] } }, 400],
      [{ eligibility: { excludeAds: ['1', '2', '3', '4', '5'] } }, 400],
    ];
    for (const [body, status] of cases) assert.is((await post(body)).status, status, JSON.stringify(body));
  } finally {
    await s.stop();
  }
});

limits('past maxInFlight requests the service answers 503 with Retry-After at once, and serves again after', async () => {
  const { generator } = waitingGenerator(1500);
  const cfg = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim: 4, drainDelayMs: 0, saveIntervalMs: 0, maxInFlight: 2 } });
  const engine = new CandidateEngine({ dim: 4, generators: [generator], scenarios: [{ name: 's', generators: ['waits'], deadlineMs: 3000 }] });
  await engine.upsertAds([{ id: 1n }]);
  const s = createService(engine, cfg);
  const url = await s.start();
  try {
    const post = () => fetch(`${url}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'u', scenario: 's' }) });
    let firstDone = false;
    const first = Promise.all([post(), post()]).finally(() => (firstDone = true));
    await new Promise((r) => setTimeout(r, 200));
    const shed = await post();
    assert.not.ok(firstDone, 'shed at once, not queued behind the two slow requests');
    assert.is(shed.status, 503);
    assert.is(shed.headers.get('retry-after'), '1');
    assert.is(((await shed.json()) as { error: { code: string } }).error.code, 'ERR_OVERLOADED');
    assert.equal((await first).map((r) => r.status), [200, 200]);
    assert.is((await post()).status, 200, 'capacity is back once they finished');
    assert.is((await fetch(`${url}/healthz`)).status, 200, 'health is not counted');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /cangen_errors_total\{route="\/v1\/retrieve",code="ERR_OVERLOADED"\} 1/);
  } finally {
    await s.stop();
  }
});

limits('an abandoned request stops: the pipeline rejects at once and its generators see the abort', async () => {
  const { generator, seen } = waitingGenerator(2000);
  const store = new AdStore();
  store.upsert({ id: 1n });
  const pipeline = new Pipeline({ generators: [generator], scenarios: new Scenarios([{ name: 's', generators: ['waits'], deadlineMs: 5000 }]), allocator: new StaticAllocator(), store });
  const controller = new AbortController();
  const t0 = performance.now();
  const pending = pipeline.retrieve({ userId: 'u', scenario: 's', signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  const error = await pending.then(() => undefined, (e: unknown) => e);
  assert.instance(error, AbortedError);
  assert.ok(performance.now() - t0 < 500, 'rejected well before the generator or the deadline');
  assert.is(seen.abortedAfterMs.length, 1, 'the generator was told');
  const already = await pipeline.retrieve({ userId: 'u', scenario: 's', signal: AbortSignal.abort() }).then(() => undefined, (e: unknown) => e);
  assert.instance(already, AbortedError);
  assert.is(seen.started, 1, 'an already-aborted request starts no generator');
});

limits('a client that hangs up aborts its request on the server', async () => {
  const { generator, seen } = waitingGenerator(1500);
  const cfg = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim: 4, drainDelayMs: 0, saveIntervalMs: 0 } });
  const engine = new CandidateEngine({ dim: 4, generators: [generator], scenarios: [{ name: 's', generators: ['waits'], deadlineMs: 1000 }] });
  await engine.upsertAds([{ id: 1n }]);
  const s = createService(engine, cfg);
  const url = await s.start();
  try {
    const client = new AbortController();
    const request = fetch(`${url}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'u', scenario: 's' }), signal: client.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    client.abort();
    await request;
    await new Promise((r) => setTimeout(r, 100));
    assert.is(seen.abortedAfterMs.length, 1);
    assert.ok(seen.abortedAfterMs[0]! < 500, `aborted ${seen.abortedAfterMs[0]!.toFixed(0)} ms in, not at the deadline`);
  } finally {
    await s.stop();
  }
});

limits('AdIndex.search and EmbeddingCorpus.search take a signal: aborted before the search, it rejects with AbortedError', async () => {
  const dim = 8;
  const index = new AdIndex({ dim, kind: 'flat', threads: 1 });
  await index.upsert(BigInt64Array.from(range(1, 100), BigInt), randomVectors(100, dim, 3));
  const query = randomVectors(1, dim, 4);
  const error = await index.search(query, 5, { signal: AbortSignal.abort() }).then(() => undefined, (e: unknown) => e);
  assert.instance(error, AbortedError);
  assert.is((error as AbortedError).code, 'ERR_ABORTED');
  const live = new AbortController();
  assert.is((await index.search(query, 5, { signal: live.signal })).counts[0], 5, 'a signal that does not fire changes nothing');
  // Queries batched into one native call: it stops only when every asker gave up; one that gave up rejects at once.
  const store = new AdStore();
  const corpus = new EmbeddingCorpus(index, store);
  for (const id of range(1, 100)) store.upsert({ id: BigInt(id) });
  const one = new AbortController();
  one.abort();
  const [gaveUp, stayed] = await Promise.allSettled([corpus.search(query, 5, undefined, one.signal), corpus.search(query, 5)]);
  assert.is(stayed.status, 'fulfilled', 'the asker that stayed gets its answer');
  assert.is(gaveUp.status, 'rejected', 'the one that left is told so, as it would be alone');
  assert.instance((gaveUp as PromiseRejectedResult).reason, AbortedError);
  index.close();
});

limits('an abort stops a running native scan early (flat: between chunks of ads; IVF: between batches of queries)', async () => {
  const dim = 32;
  const cases: [string, AdIndex, number][] = [];
  const flat = new AdIndex({ dim, kind: 'flat', threads: 1 });
  for (let s = 0; s < 200_000; s += 50_000) await flat.upsert(BigInt64Array.from({ length: 50_000 }, (_, i) => BigInt(s + i + 1)), randomVectors(50_000, dim, s + 7));
  cases.push(['flat', flat, 512]);
  const ivf = new AdIndex({ dim, kind: 'ivf-flat', nlist: 16, nprobe: 16, threads: 1 });
  const sample = randomVectors(50_000, dim, 8);
  await ivf.train(sample);
  await ivf.upsert(BigInt64Array.from({ length: 50_000 }, (_, i) => BigInt(i + 1)), sample);
  cases.push(['ivf-flat', ivf, 512]);
  for (const [kind, index, nq] of cases) {
    const queries = randomVectors(nq, dim, 9);
    await expectEarlyStop(kind, (signal) => index.search(queries, 50, { signal }), nq, 50);
    index.close();
  }
});

limits('an abort stops a running learned-scorer scan early', async () => {
  const dim = 32;
  const n = 200_000;
  const scorer = await LearnedScorer.load(writeModel({ format: 'cangen-scorer', version: 1, kind: 'dot', userDim: dim, itemDim: dim, heads: ['score'] }, {}), { threads: 1 });
  for (let s = 0; s < n; s += 50_000) await scorer.add(BigInt64Array.from({ length: 50_000 }, (_, i) => BigInt(s + i + 1)), randomVectors(50_000, dim, s + 3));
  const users = randomVectors(512, dim, 5);
  assert.instance(await scorer.search(users, 20, { signal: AbortSignal.abort() }).then(() => undefined, (e: unknown) => e), AbortedError);
  await expectEarlyStop('scorer', (signal) => scorer.search(users, 20, { signal }), 512, 20);
  scorer.close();
});

limits('query embeddings: an LRU cache, one shared call per text in flight, and a calls-per-second budget', async () => {
  const texts: string[] = [];
  const hashed = new HashedNgramEmbedder({ dim: 16 });
  const counting: Embedder = {
    dim: 16,
    name: 'counting',
    async embed(batch) {
      texts.push(...batch);
      await new Promise((r) => setTimeout(r, 20));
      return hashed.embed(batch);
    },
  };
  const index = new AdIndex({ dim: 16, metric: 'cosine', kind: 'flat' });
  const store = new AdStore();
  const content = new ContentGenerator({ embedder: counting, corpus: new EmbeddingCorpus(index, store), cacheSize: 2, callsPerSecond: 1 });
  store.upsert({ id: 1n, title: 'red running shoes' });
  const prepared = await content.embedAds([{ id: 1n, text: 'red running shoes' }]);
  await index.upsert(BigInt64Array.from(prepared.ids), prepared.vectors, store.nativeAttributes(prepared.ids));
  texts.length = 0;
  const ask = (text: string) => content.generate({ request: { userId: 'u', scenario: 's' }, features: { text }, scenario: 's', quota: 1, fetch: 1, signal: new AbortController().signal });
  // Three concurrent asks for one text: one embedder call.
  const same = await Promise.all([ask('running shoes'), ask('running shoes'), ask('running shoes')]);
  assert.equal(same.map((c) => c.map((x) => x.adId)), [[1n], [1n], [1n]]);
  assert.equal(texts, ['running shoes']);
  await ask('red shoes'); // second call: the burst (2 x 1 per second) is spent
  const refused = await ask('blue shoes').then(() => undefined, (e: unknown) => e);
  assert.instance(refused, EmbedderBudgetError);
  assert.is((refused as EmbedderBudgetError).code, 'ERR_EMBEDDER_BUDGET');
  assert.equal(await ask('running shoes').then((c) => c.length), 1, 'cached texts are served past the budget');
  assert.equal(texts, ['running shoes', 'red shoes']);
  // LRU of 2: 'running shoes' was used last, so 'red shoes' went when 'shoes' came in.
  await new Promise((r) => setTimeout(r, 2100)); // the budget refills to its burst of 2
  await ask('shoes');
  await ask('running shoes');
  assert.equal(texts, ['running shoes', 'red shoes', 'shoes'], 'the recently used text stayed');
  await ask('red shoes');
  assert.equal(texts, ['running shoes', 'red shoes', 'shoes', 'red shoes'], 'the least recently used one was dropped');
  assert.is(content.queryCalls, 4);
  index.close();
});

limits('compiled filters are cached up to filterCacheSize; answers stay exact past it', async () => {
  const dim = 8;
  const n = 300;
  const engine = new CandidateEngine({ dim, filterCacheSize: 3, scenarios: [{ name: 's', generators: ['two-tower'], k: 10, deadlineMs: 5000, overfetch: 1 }] });
  const vectors = randomVectors(n, dim, 71);
  await engine.upsertAds(range(1, n).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim), category: `c${i % 10}` })));
  const query = randomVectors(1, dim, 72);
  const dot = (i: number) => query.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  const generator = engine.pipeline.generator('two-tower')!;
  for (let round = 0; round < 2; round++) {
    for (let c = 0; c < 10; c++) {
      const got = await generator.generate({ request: { userId: 'u', scenario: 's', eligibility: { categories: [`c${c}`] } }, features: { embedding: query }, scenario: 's', quota: 10, fetch: 10, signal: new AbortController().signal });
      const expected = range(1, n).filter((i) => i % 10 === c).sort((a, b) => dot(b) - dot(a)).slice(0, 10);
      assert.equal(got.map((x) => Number(x.adId)), expected);
      assert.ok(engine.embeddings.compiledFilters <= 3, `${engine.embeddings.compiledFilters} filters held`);
    }
  }
  await engine.close();
});

limits.run();
