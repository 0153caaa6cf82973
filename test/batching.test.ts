/**
 * Cross-request batching (lib/request-batcher.ts): concurrent searches share native calls and
 * every request still gets what it would get alone, checked against one-at-a-time searches and a
 * float64 brute force, with writes, cancellation, and the batcher's size and delay limits.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, type AdSearchOptions } from '../lib/ad-index';
import { AdCorpus } from '../lib/corpus/ad-corpus';
import { EmbeddingCorpus, type CorpusHit } from '../lib/corpus/embedding-corpus';
import { requestEligibility, type RequestEligibility } from '../lib/corpus/eligibility';
import { AbortedError, InvalidArgumentError } from '../lib/errors';
import { CandidateEngine } from '../lib/orchestration/engine';
import { LearnedScorerAdapter } from '../lib/orchestration/generators/learned-scorer';
import { RequestBatcher, splitBySize, type BatchingOptions } from '../lib/request-batcher';
import { LearnedScorer } from '../lib/scorer';
import { loadConfig } from '../lib/service';
import { randomVectors, rng } from './helpers/random';
import { randomTensors, referenceScores, writeModel } from './helpers/scorer-model';
import { rejects } from './helpers/rejects';

const batching = suite('cross-request batching');
const dim = 16;
const categories = ['c0', 'c1', 'c2', 'c3'];
const tolerance = 1e-4;

/** The ads as the test wrote them: the reference's own copy. */
interface Ads {
  vectors: Map<bigint, Float32Array>;
  category: Map<bigint, string>;
}

interface Ask {
  query: Float32Array;
  k: number;
  filter?: { categories?: string[]; excludeAds?: bigint[] };
}

async function corpusWith(n: number, seed: number, contentDim = 0): Promise<{ corpus: AdCorpus; ads: Ads }> {
  const corpus = AdCorpus.inMemory({ dim, contentDim, threads: 1 });
  const ads: Ads = { vectors: new Map(), category: new Map() };
  await write(corpus, ads, Array.from({ length: n }, (_, i) => BigInt(i + 1)), seed);
  return { corpus, ads };
}

async function write(corpus: AdCorpus, ads: Ads, ids: bigint[], seed: number): Promise<void> {
  const v = randomVectors(ids.length, dim, seed);
  const upserts = ids.map((id, i) => {
    const embedding = v.slice(i * dim, (i + 1) * dim);
    const category = categories[Number(id) % categories.length]!;
    ads.vectors.set(id, embedding);
    ads.category.set(id, category);
    return { ad: { id, category }, embedding };
  });
  await corpus.write({ upserts });
}

async function remove(corpus: AdCorpus, ads: Ads, ids: bigint[]): Promise<void> {
  for (const id of ids) {
    ads.vectors.delete(id);
    ads.category.delete(id);
  }
  await corpus.write({ removes: ids });
}

/** Float64 brute force: the best k eligible live ads by inner product. */
function reference(ads: Ads, ask: Ask): { ids: bigint[]; scores: number[] } {
  const exclude = new Set(ask.filter?.excludeAds ?? []);
  const scored: { id: bigint; score: number }[] = [];
  for (const [id, v] of ads.vectors) {
    if (exclude.has(id)) continue;
    if (ask.filter?.categories && !ask.filter.categories.includes(ads.category.get(id)!)) continue;
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += ask.query[j]! * v[j]!;
    scored.push({ id, score: dot });
  }
  scored.sort((a, b) => b.score - a.score);
  const top = scored.slice(0, ask.k);
  return { ids: top.map((s) => s.id), scores: top.map((s) => s.score) };
}

type Answer = { adIds?: readonly bigint[]; ids?: readonly bigint[]; scores: readonly number[] };

/** How `actual` differs from `expected` beyond float rounding (undefined: the same answer): scores rank by rank, and the same id wherever no near-tie makes the order arbitrary. */
function difference(actual: Answer, expected: { ids: readonly bigint[]; scores: readonly number[] }): string | undefined {
  const ids = actual.adIds ?? actual.ids!;
  if (ids.length !== expected.ids.length) return `count ${ids.length} vs ${expected.ids.length}`;
  for (let i = 0; i < ids.length; i++) {
    if (!(Math.abs(actual.scores[i]! - expected.scores[i]!) < tolerance)) return `score at rank ${i}: ${actual.scores[i]} vs ${expected.scores[i]}`;
    const gapBefore = i > 0 ? expected.scores[i - 1]! - expected.scores[i]! : Infinity;
    const gapAfter = i + 1 < ids.length ? expected.scores[i]! - expected.scores[i + 1]! : Infinity;
    if (Math.min(gapBefore, gapAfter) > tolerance && ids[i] !== expected.ids[i]) return `id at rank ${i}: ${ids[i]} vs ${expected.ids[i]}`;
  }
  return undefined;
}

function assertSame(actual: Answer, expected: { ids: readonly bigint[]; scores: readonly number[] }, what: string): void {
  const differs = difference(actual, expected);
  assert.ok(differs === undefined, `${what}: ${differs}`);
}

function eligibilityOf(ask: Ask): RequestEligibility | undefined {
  return ask.filter ? requestEligibility(undefined, ask.filter) : undefined;
}

/** Counts the index's native search calls and the queries each carried (the real search runs). */
function countCalls(index: AdIndex): { queries: number[]; ks: number[] } {
  const seen = { queries: [] as number[], ks: [] as number[] };
  const search = index.search.bind(index);
  index.search = (queries: Float32Array, k: number, options?: AdSearchOptions) => {
    seen.queries.push(queries.length / index.dim);
    seen.ks.push(k);
    return search(queries, k, options);
  };
  return seen;
}

function asks(count: number, seed: number, ks: number[]): Ask[] {
  const next = rng(seed);
  const queries = randomVectors(count, dim, seed + 1);
  const filters: (Ask['filter'] | undefined)[] = [undefined, { categories: ['c0'] }, { categories: ['c1', 'c2'] }, { categories: ['c3'], excludeAds: [3n, 7n, 11n, 15n] }];
  return Array.from({ length: count }, (_, i) => ({
    query: queries.subarray(i * dim, (i + 1) * dim),
    k: ks[Math.floor(next() * ks.length)]!,
    filter: filters[Math.floor(next() * filters.length)],
  }));
}

batching('many concurrent searches with different k and filters: each gets what it gets alone, and the float64 top-k', async () => {
  const { corpus, ads } = await corpusWith(4000, 1);
  const batched = new EmbeddingCorpus(corpus.behavioural, corpus.store);
  const alone = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { enabled: false } });
  const requests = asks(160, 2, [1, 3, 10, 40, 100, 250, 1000]);
  const together = await Promise.all(requests.map((a) => batched.search(a.query, a.k, eligibilityOf(a))));
  for (let i = 0; i < requests.length; i++) {
    const one = await alone.search(requests[i]!.query, requests[i]!.k, eligibilityOf(requests[i]!));
    const what = `request ${i} (k ${requests[i]!.k}, filter ${JSON.stringify(requests[i]!.filter?.categories)})`;
    assert.ok(together[i]!.adIds.length <= requests[i]!.k, `${what}: at most its own k back, not the batch's`);
    assertSame(together[i]!, { ids: one.adIds, scores: one.scores }, `${what} vs alone`);
    assertSame(together[i]!, reference(ads, requests[i]!), `${what} vs float64`);
    assert.is(together[i]!.eligible, requests[i]!.filter !== undefined);
  }
  const { calls, requests: answered } = batched.batching;
  assert.is(answered, requests.length);
  // Everything was asked in one synchronous run: per filter, at most 4 calls (k 1000-250, 100-40, 10-3, 1).
  assert.ok(calls <= 4 * 4, `${calls} index calls for ${requests.length} concurrent searches`);
  assert.is(alone.batching.calls, requests.length, 'batching off: one call per search');
  await corpus.close();
});

batching('searches issued after an awaited write see it, even when they queue behind a call started before it', async () => {
  const { corpus, ads } = await corpusWith(20_000, 3);
  const batched = new EmbeddingCorpus(corpus.behavioural, corpus.store);
  const seen = countCalls(corpus.behavioural);
  for (let round = 0; round < 6; round++) {
    const requests = asks(24, 10 + round, [5, 20, 60]);
    const before = new Map(ads.vectors);
    const beforeCategories = new Map(ads.category);
    // Concurrent with the write: may see the corpus before or after it, as alone.
    const during = requests.map((a) => batched.search(a.query, a.k, eligibilityOf(a)));
    const best = reference(ads, requests[0]!).ids.slice(0, 2);
    await remove(corpus, ads, best);
    const fresh = Array.from({ length: 50 }, (_, i) => BigInt(100_000 + round * 100 + i));
    await write(corpus, ads, fresh, 20 + round);
    // Issued after the write resolved: must see it, even if a call started before it is still running.
    const after = requests.map((a) => batched.search(a.query, a.k, eligibilityOf(a)));
    const answers = await Promise.all(after);
    answers.forEach((hit, i) => {
      assertSame(hit, reference(ads, requests[i]!), `round ${round}, request ${i} after the write`);
      for (const id of best) assert.not.ok(hit.adIds.includes(id), `round ${round}: removed ad ${id} returned`);
    });
    const old: Ads = { vectors: before, category: beforeCategories };
    (await Promise.all(during)).forEach((hit, i) => {
      const versusOld = difference(hit, reference(old, requests[i]!));
      const versusNew = difference(hit, reference(ads, requests[i]!));
      assert.ok(versusOld === undefined || versusNew === undefined, `round ${round}, request ${i} during the write: neither before (${versusOld}) nor after (${versusNew})`);
    });
  }
  assert.ok(seen.queries.some((n) => n > 1), `batches formed: ${seen.queries.join(',')}`);
  await corpus.close();
});

batching('a search arriving at an idle corpus goes at once: before any timer or tick, alone in its call', async () => {
  const { corpus } = await corpusWith(500, 4);
  const e = requestEligibility(undefined, { categories: ['c1'] });
  for (const enabled of [true, false]) {
    const c = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { enabled } });
    await c.search(randomVectors(1, dim, 5), 3, e);  // compiles the filter
    const seen = countCalls(corpus.behavioural);
    let ticked = false;
    setImmediate(() => (ticked = true));
    const pending = c.search(randomVectors(1, dim, 6), 3, e);
    if (!enabled) assert.is(seen.queries.length, 1, 'batching off: the native call is made within search()');
    await Promise.resolve();
    assert.is(seen.queries.length, 1, `enabled ${enabled}: the native call is made on the next microtask`);
    assert.not.ok(ticked, 'no tick passed');
    assert.is((await pending).adIds.length, 3);
  }
  await corpus.close();
});

batching('batches form under load: queued searches go together when the call in flight returns; filters, k far apart and repeated vectors', async () => {
  // Searches of this size would run inline on the main thread (the fast path for tiny calls) and
  // finish within one loop turn, before the next arrives: off, so that a call spans several turns.
  const savedBudget = process.env.CANGEN_INLINE_MACS;
  process.env.CANGEN_INLINE_MACS = '0';
  try {
    await batchesFormUnderLoad();
  } finally {
    if (savedBudget === undefined) delete process.env.CANGEN_INLINE_MACS;
    else process.env.CANGEN_INLINE_MACS = savedBudget;
  }
});

async function batchesFormUnderLoad(): Promise<void> {
  const { corpus, ads } = await corpusWith(30_000, 7);
  // One call at a time: what is asked while it runs queues.
  const c = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { maxDelayMs: 10_000, maxInFlight: 1 } });
  const seen = countCalls(corpus.behavioural);
  const requests = asks(40, 8, [10]).map((a) => ({ ...a, filter: undefined }));
  const first = c.search(requests[0]!.query, 10);
  await Promise.resolve();
  assert.is(seen.queries.length, 1, 'the first goes alone');
  // Arriving one by one while the first call runs: they queue, then go as one call.
  const rest: Promise<CorpusHit>[] = [];
  for (const a of requests.slice(1)) {
    rest.push(c.search(a.query, a.k));
    await new Promise((r) => setImmediate(r));
  }
  const hits = await Promise.all([first, ...rest]);
  hits.forEach((hit, i) => assertSame(hit, reference(ads, requests[i]!), `request ${i}`));
  assert.ok(seen.queries.length < requests.length / 2, `${seen.queries.length} calls for ${requests.length} searches: ${seen.queries.join(',')}`);
  assert.ok(Math.max(...seen.queries) > 1);

  // A queued search answers the vector it was called with, even when the caller reuses its array.
  const reused = new Float32Array(requests[0]!.query);
  const inFlight = c.search(requests[1]!.query, 10);
  await Promise.resolve();
  const queuedSearch = c.search(reused, 10);
  const twin = c.search(reused.slice(), 10);
  reused.set(requests[2]!.query);
  const sameArrayLater = c.search(reused, 10);
  await inFlight;
  assertSame(await queuedSearch, reference(ads, requests[0]!), 'the vector as search() was called');
  assertSame(await sameArrayLater, reference(ads, requests[2]!), 'the same array with new values: a row of its own');
  assert.equal((await twin).adIds, (await queuedSearch).adIds);

  // Different filters and k far apart do not share; the same vector twice is one row.
  const q = randomVectors(1, dim, 9);
  const q2 = randomVectors(1, dim, 10);
  const c1 = requestEligibility(undefined, { categories: ['c1'] });
  await c.search(q, 1, c1);
  const fresh = () => {
    seen.queries.length = 0;
    seen.ks.length = 0;
  };
  fresh();
  const mixed = await Promise.all([c.search(q, 10, c1), c.search(q, 12, c1), c.search(q, 10), c.search(q2, 1000, c1)]);
  assert.equal(seen.queries, [1, 1, 1], 'filter c1 at k 1000; filter c1 at k 10-12 (one vector: one row); unfiltered');
  assert.equal(seen.ks.sort((a, b) => a - b), [10, 12, 1000]);
  assert.equal(mixed.map((h) => h.adIds.length), [10, 12, 10, 1000]);
  assert.equal(mixed[0]!.adIds, mixed[1]!.adIds.slice(0, 10), 'k 10 is the k 12 answer cut, not the batch\'s');
  // The same vector at k 10 and 1000 is one row at 1000: cheaper than a second scan.
  fresh();
  const twice = await Promise.all([c.search(q, 10, c1), c.search(q, 1000, c1)]);
  assert.equal([seen.queries, seen.ks], [[1], [1000]]);
  assert.equal(twice[0]!.adIds, twice[1]!.adIds.slice(0, 10));
  assertSame(twice[1]!, reference(ads, { query: q, k: 1000, filter: { categories: ['c1'] } }), 'k 1000 of c1');
  // The split itself: largest first, down to a quarter of the largest; a twin rides along.
  const ks = [10, 12, 1000, 300, 200, 50, 3];
  assert.equal(splitBySize(ks, (k) => k).map((g) => g.map((i) => ks[i])), [[1000, 300], [200, 50], [12, 10, 3]]);
  assert.equal(splitBySize(ks, (k) => k, (k, member) => k === 3 && member === 1000).map((g) => g.map((i) => ks[i])), [[1000, 300, 3], [200, 50], [12, 10]]);
  await corpus.close();
}

batching('maxBatchSize bounds every call; maxDelayMs sends the queue while a call is still in flight', async () => {
  const { corpus } = await corpusWith(1000, 11);
  const c = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { maxBatchSize: 4 } });
  const seen = countCalls(corpus.behavioural);
  const queries = randomVectors(10, dim, 12);
  await Promise.all(Array.from({ length: 10 }, (_, i) => c.search(queries.subarray(i * dim, (i + 1) * dim), 5)));
  assert.equal(seen.queries, [4, 4, 2]);
  assert.is(c.batching.largestBatch, 4);

  // The batcher alone, with calls that return when the test says: the delay is measured, not inferred.
  const started: { items: number[]; at: number }[] = [];
  const finish: (() => void)[] = [];
  const make = (options: BatchingOptions) =>
    new RequestBatcher<number, number>((items) => {
      started.push({ items: [...items], at: performance.now() });
      return new Promise((resolve) => finish.push(() => resolve(items.map((x) => x * 2))));
    }, options);
  const slow = make({ maxDelayMs: 30, maxInFlight: 1 });
  const a = slow.submit('', 1);
  await Promise.resolve();
  const queuedAt = performance.now();
  const b = slow.submit('', 2);
  const c3 = slow.submit('', 3);
  for (let waited = 0; started.length < 2 && waited < 2000; waited++) await new Promise((r) => setTimeout(r, 1));
  assert.is(started.length, 2, 'sent while the first call is still running (the test never finished it)');
  assert.equal(started[1]!.items, [2, 3]);
  const waited = started[1]!.at - queuedAt;
  // Timers run on the event loop's millisecond clock: up to 1 ms early against performance.now().
  assert.ok(waited >= 29, `sent after ${waited.toFixed(1)} ms: not before the oldest had waited maxDelayMs`);
  finish.forEach((f) => f());
  assert.equal(await Promise.all([a, b, c3]), [2, 4, 6]);

  started.length = 0;
  finish.length = 0;
  const patient = make({ maxDelayMs: 60_000, maxInFlight: 1 });
  const d = patient.submit('', 4);
  await Promise.resolve();
  const e = patient.submit('', 5);
  await new Promise((r) => setTimeout(r, 30));
  assert.is(started.length, 1, 'waits for the call in flight');
  finish[0]!();
  await d;
  assert.is(started.length, 2, 'sent as the call in flight returned');
  finish[1]!();
  assert.is(await e, 10);
  await corpus.close();
});

batching('maxInFlight: requests go at once while fewer calls run, then queue; completions send the queue by key, the oldest first', async () => {
  const started: { key: string; items: number[] }[] = [];
  const finish: (() => void)[] = [];
  const b = new RequestBatcher<number, number>((items, key) => {
    started.push({ key, items: [...items] });
    return new Promise((resolve) => finish.push(() => resolve(items.map((x) => -x))));
  }, { maxInFlight: 2, maxDelayMs: 60_000 });
  const answers = [b.submit('a', 1)];
  await Promise.resolve();
  answers.push(b.submit('a', 2));
  await Promise.resolve();
  assert.equal(started.map((s) => s.items), [[1], [2]], 'two calls may run: both went alone');
  answers.push(b.submit('b', 3), b.submit('a', 4), b.submit('b', 5));
  await new Promise((r) => setImmediate(r));
  assert.is(started.length, 2, 'the third waits');
  finish[0]!();
  await answers[0];
  assert.equal(started[2], { key: 'b', items: [3, 5] }, 'one slot free: the key waiting longest goes');
  finish[1]!();
  await answers[1];
  assert.equal(started[3], { key: 'a', items: [4] });
  finish[2]!();
  finish[3]!();
  assert.equal(await Promise.all(answers), [-1, -2, -3, -4, -5]);
  assert.equal(b.stats, { calls: 4, requests: 5, largestBatch: 2 });
});

batching('cancellation: a search aborted while queued or in flight rejects with AbortedError; the others get their answers', async () => {
  const { corpus, ads } = await corpusWith(40_000, 13);
  const c = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { maxDelayMs: 10_000, maxInFlight: 1 } });
  const seen = countCalls(corpus.behavioural);
  const requests = asks(6, 14, [20]).map((a) => ({ ...a, filter: undefined }));
  const search = (i: number, signal?: AbortSignal) => c.search(requests[i]!.query, 20, undefined, signal);
  // In flight together: one leaves, the call goes on for the other.
  const leaving = new AbortController();
  const [left, stayed] = [search(0, leaving.signal), search(1)];
  await Promise.resolve();
  leaving.abort();
  await rejects(left, 'ERR_ABORTED', /batch goes on for the others/);
  assertSame(await stayed, reference(ads, requests[1]!), 'the one that stayed');
  // Queued behind a call: the aborted one leaves the queue, the others go on.
  const running = search(2);
  await Promise.resolve();
  const quitter = new AbortController();
  const queued = [search(3), search(4, quitter.signal), search(5)];
  quitter.abort();
  await rejects(queued[1]!, 'ERR_ABORTED', /aborted while queued/);
  const answers = await Promise.all([running, queued[0]!, queued[2]!]);
  [2, 3, 5].forEach((r, i) => assertSame(answers[i]!, reference(ads, requests[r]!), `request ${r}`));
  assert.equal(seen.queries.slice(-2), [1, 2], 'the queue went as one call without the aborted search');
  // Every member aborted: the native call stops.
  const all = [new AbortController(), new AbortController()];
  const both = [search(0, all[0]!.signal), search(1, all[1]!.signal)];
  await Promise.resolve();
  all.forEach((a) => a.abort());
  for (const p of both) await rejects(p, 'ERR_ABORTED', /aborted/);
  await rejects(() => search(0, AbortSignal.abort()), 'ERR_ABORTED', /before it started/);
  assert.instance(await search(0, AbortSignal.abort()).catch((e: unknown) => e), AbortedError);
  await corpus.close();
});

batching('a learned scorer scans concurrent requests together: per-request k and filter, equal to the model scored alone', async () => {
  const config = {
    format: 'cangen-scorer', version: 1, kind: 'mol', userDim: dim, itemDim: dim, heads: ['click'],
    mol: { queryComponents: 2, itemComponents: 2, componentDim: 4, gatingWidth: 8, temperature: 0.3 },
  };
  const tensors = randomTensors(config);
  const model = await LearnedScorer.load(writeModel(config, tensors));
  const { corpus, ads } = await corpusWith(0, 15);
  const behavioural = new EmbeddingCorpus(corpus.behavioural, corpus.store);
  const adapter = new LearnedScorerAdapter(model);
  await adapter.attach(behavioural);
  await write(corpus, ads, Array.from({ length: 600 }, (_, i) => BigInt(i + 1)), 16);
  const requests = asks(30, 17, [2, 10, 30]);
  const answers = await Promise.all(requests.map((a) => adapter.topK(a.query, a.k, undefined, eligibilityOf(a))));
  requests.forEach((a, r) => {
    const ids = [...ads.vectors.keys()].filter((id) => !a.filter?.categories || a.filter.categories.includes(ads.category.get(id)!));
    const x = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => x.set(ads.vectors.get(id)!, i * dim));
    const scores = referenceScores(config, tensors, a.query, x, [1]);
    const expected = ids.map((id, i) => ({ id, score: scores[i]! })).sort((p, q) => q.score - p.score).slice(0, a.k);
    assertSame({ ids: answers[r]!.map((c) => c.adId), scores: answers[r]!.map((c) => c.score) }, { ids: expected.map((e) => e.id), scores: expected.map((e) => e.score) }, `scorer request ${r}`);
  });
  // Per filter, at most 2 scans (k 30-10, 2).
  assert.ok(adapter.batching.calls <= 4 * 2, `${adapter.batching.calls} scans for ${requests.length} requests`);
  await rejects(() => adapter.topK(new Float32Array(dim + 1), 3), 'ERR_DIMENSION_MISMATCH', /userDim 16/);
  model.close();
  await corpus.close();
});

batching('an engine batches its generators\' searches: concurrent retrieves answer as with batching off, in fewer index calls', async () => {
  const { corpus, ads } = await corpusWith(3000, 21, 8);
  const scenarios = [{ name: 's', generators: ['two-tower', 'scorer'], k: 30, overfetch: 1, deadlineMs: 5000, staticShares: { 'two-tower': 0.5, scorer: 0.5 } }];
  const engines = [true, false].map((enabled) => new CandidateEngine({ dim, corpus, embedder: { dim: 8, name: 'none', embed: async (texts) => new Float32Array(texts.length * 8) }, scenarios, allocator: 'static', batching: { enabled } }));
  const users = randomVectors(24, dim, 22);
  const retrieve = (engine: CandidateEngine, u: number) => engine.retrieve({
    userId: `u${u}`, scenario: 's', features: { embedding: users.subarray(u * dim, (u + 1) * dim) }, eligibility: u % 2 ? { categories: ['c1', 'c3'] } : undefined,
  });
  const [on, off] = await Promise.all(engines.map((engine) => Promise.all(Array.from({ length: 24 }, (_, u) => retrieve(engine, u)))));
  for (let u = 0; u < 24; u++) {
    assert.equal(on![u]!.candidates.map((c) => c.adId), off![u]!.candidates.map((c) => c.adId), `user ${u}`);
    const best = reference(ads, { query: users.subarray(u * dim, (u + 1) * dim), k: 30, filter: u % 2 ? { categories: ['c1', 'c3'] } : undefined });
    assert.equal(new Set(on![u]!.candidates.map((c) => c.adId)), new Set(best.ids), `user ${u}: the exact top 30`);
  }
  const [batched, alone] = engines.map((e) => e.embeddings.batching);
  assert.is(alone!.calls, alone!.requests, 'off: one call per search');
  assert.is(batched!.requests, alone!.requests);
  // Two filters; each retrieve asks twice (its refill round too: two-tower and the scorer propose the same ads).
  assert.ok(batched!.calls <= 8, `on: ${batched!.calls} calls for ${batched!.requests} searches`);
  await corpus.close();
});

batching('bad batching values are typed errors naming the setting', async () => {
  const index = new AdIndex({ dim });
  const { AdStore } = await import('../lib/corpus/ad-store');
  const store = new AdStore();
  const bad: [unknown, RegExp][] = [
    [{ maxBatchSize: 0 }, /integer between 1 and 65536 for EmbeddingCorpus options\.batching\.maxBatchSize but received number 0/],
    [{ maxBatchSize: -3 }, /maxBatchSize/],
    [{ maxBatchSize: 2.5 }, /maxBatchSize/],
    [{ maxBatchSize: NaN }, /maxBatchSize/],
    [{ maxDelayMs: -1 }, /number between 0 and 60000 for EmbeddingCorpus options\.batching\.maxDelayMs but received number -1/],
    [{ maxDelayMs: NaN }, /maxDelayMs/],
    [{ maxDelayMs: Infinity }, /maxDelayMs/],
    [{ enabled: 'yes' }, /true or false for EmbeddingCorpus options\.batching\.enabled/],
    [{ maxInFlight: 0 }, /integer between 1 and 4096 for EmbeddingCorpus options\.batching\.maxInFlight but received number 0/],
    [{ maxBatchsize: 4 }, /Unknown option 'maxBatchsize'.*did you mean 'maxBatchSize'/],
    ['fast', /an options object/],
  ];
  for (const [batching, pattern] of bad) {
    await rejects(() => new EmbeddingCorpus(index, store, { batching: batching as BatchingOptions }), 'ERR_INVALID_ARGUMENT', pattern);
  }
  assert.throws(() => new CandidateEngine({ dim, batching: { maxBatchSize: 0 } }), (e: unknown) => e instanceof InvalidArgumentError && /CandidateEngine options\.batching\.maxBatchSize/.test(e.message));
  await rejects(() => new EmbeddingCorpus(index, store).search(new Float32Array(dim), 0), 'ERR_INVALID_ARGUMENT', /for k/);
  const fractional = new EmbeddingCorpus(index, store, { batching: { maxDelayMs: 0.5 } });
  assert.is(fractional.batching.calls, 0);
  index.close();

  // The service: environment variables and config file keys.
  const config = loadConfig({ env: { CANGEN_BATCHING: 'false', CANGEN_BATCH_MAX_SIZE: '16', CANGEN_BATCH_MAX_DELAY_MS: '1.5', CANGEN_BATCH_MAX_IN_FLIGHT: '1' } });
  assert.equal([config.batching, config.batchMaxSize, config.batchMaxDelayMs, config.batchMaxInFlight], [false, 16, 1.5, 1]);
  const defaults = loadConfig({ env: {} });
  assert.equal([defaults.batching, defaults.batchMaxSize, defaults.batchMaxDelayMs, defaults.batchMaxInFlight], [true, 64, 5, 0]);
  const serviceBad: [Record<string, string>, RegExp][] = [
    [{ CANGEN_BATCH_MAX_SIZE: '0' }, /integer between 1 and 65536 for batchMaxSize \(from environment variable CANGEN_BATCH_MAX_SIZE\)/],
    [{ CANGEN_BATCH_MAX_SIZE: '1.5' }, /batchMaxSize/],
    [{ CANGEN_BATCH_MAX_DELAY_MS: '-1' }, /milliseconds between 0 and 60000 for batchMaxDelayMs \(from environment variable CANGEN_BATCH_MAX_DELAY_MS\)/],
    [{ CANGEN_BATCH_MAX_DELAY_MS: 'soon' }, /batchMaxDelayMs/],
    [{ CANGEN_BATCH_MAX_DELAY_MS: '1.2.3' }, /batchMaxDelayMs/],
    [{ CANGEN_BATCHING: 'maybe' }, /true or false for batching/],
    [{ CANGEN_BATCH_MAX_IN_FLIGHT: '-2' }, /batchMaxInFlight/],
  ];
  for (const [env, pattern] of serviceBad) await rejects(() => loadConfig({ env }), 'ERR_CONFIG', pattern);
});

batching.run();
