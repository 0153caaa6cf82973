import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DimensionMismatchError, InvalidArgumentError } from '../lib';
import {
  AdStore,
  CandidateEngine,
  EmbedderError,
  HashedNgramEmbedder,
  OpenAIEmbedder,
  Pipeline,
  Scenarios,
  StaticAllocator,
  UnknownGeneratorError,
  UnknownScenarioError,
  requestEligibility,
  type CandidateGenerator,
  type EligibilityFilter,
  type GeneratedCandidate,
  type GeneratorInput,
} from '../lib/orchestration';
import { randomVectors } from './helpers/random';
import { randomTensors, referenceScores, writeModel } from './helpers/scorer-model';
import { IndexReranker, LearnedScorer, TwoStageRetriever } from '../lib/scorer';
import { EmbeddingCorpus, LearnedScorerAdapter, ScorerGenerator, isMarkedEligible } from '../lib/orchestration';
import { compiledFilter, localIndex } from '../lib/corpus/search-index';
import { FlatIndex } from '../lib';
import { AdIndex } from '../lib/ad-index';

const pipeline = suite('pipeline: deadline, eligibility, de-duplication, merge');

/** A generator with a fixed ranked list and an optional delay (a real timer, honouring the abort). */
function listGenerator(name: string, ids: number[], delayMs = 0): CandidateGenerator & { calls: GeneratorInput[] } {
  const calls: GeneratorInput[] = [];
  return {
    name,
    calls,
    async generate(input) {
      calls.push(input);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return ids.slice(0, input.fetch).map((id, i): GeneratedCandidate => ({ adId: BigInt(id), score: 100 - i }));
    },
  };
}

function storeWith(n: number): AdStore {
  const store = new AdStore();
  for (let i = 1; i <= n; i++) store.upsert({ id: BigInt(i), advertiserId: `adv${i % 3}`, campaignId: `c${i % 4}`, category: i % 2 ? 'odd' : 'even' });
  return store;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

pipeline('a slow generator is cut off at the deadline; the others backfill its slots', async () => {
  const fast = listGenerator('fast', range(1, 100));
  const slow = listGenerator('slow', range(101, 200), 400);
  const p = new Pipeline({
    generators: [fast, slow],
    scenarios: new Scenarios([{ name: 'home', generators: ['fast', 'slow'], k: 20, deadlineMs: 40, overfetch: 3 }]),
    allocator: new StaticAllocator(),
    store: storeWith(200),
  });
  const t0 = performance.now();
  const result = await p.retrieve({ userId: 'u1', scenario: 'home' });
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 40 + 20, `answered in ${elapsed.toFixed(1)} ms with a 40 ms deadline`);
  assert.ok(elapsed >= 30, `waited for the slow generator until the budget: ${elapsed.toFixed(1)} ms`);
  const slowReport = result.generators.find((g) => g.name === 'slow')!;
  assert.is(slowReport.status, 'timeout');
  assert.is(slowReport.kept, 0);
  assert.ok(slow.calls[0]!.signal.aborted, 'the late generator was told to stop');
  assert.is(result.generators.find((g) => g.name === 'fast')!.status, 'ok');
  assert.is(result.quotas.fast, 10);
  // All 20 slots filled from the fast generator's surplus, in its rank order.
  assert.equal(result.candidates.map((c) => Number(c.adId)), range(1, 20));
  assert.equal(result.candidates.map((c) => c.rank), range(0, 19));
});

pipeline('candidates proposed twice appear once, owned by the generator that ranks them higher', async () => {
  const a = listGenerator('a', [1, 2, 3, 4, 5, 6, 7, 8]);
  const b = listGenerator('b', [9, 3, 2, 10, 11, 12, 13, 14]);
  const p = new Pipeline({
    generators: [a, b],
    scenarios: new Scenarios([{ name: 's', generators: ['a', 'b'], k: 8, overfetch: 2 }]),
    allocator: new StaticAllocator(),
    store: storeWith(20),
  });
  const result = await p.retrieve({ userId: 'u', scenario: 's' });
  const ids = result.candidates.map((c) => Number(c.adId));
  assert.equal(ids, [1, 9, 2, 3, 4, 10, 5, 11]);
  assert.is(new Set(ids).size, ids.length);
  const byId = new Map(result.candidates.map((c) => [Number(c.adId), c]));
  assert.is(byId.get(3)!.source, 'b'); // b ranked 3 second, a ranked it third
  assert.equal(byId.get(3)!.sources.sort(), ['a', 'b']);
  assert.is(byId.get(2)!.source, 'a');
  assert.equal(result.generators.map((g) => g.kept), [4, 4]);
});

pipeline('eligibility: inactive, out of budget, geo targeting and request filters', async () => {
  const store = new AdStore();
  const n = 60;
  for (let i = 1; i <= n; i++) {
    store.upsert({
      id: BigInt(i),
      advertiserId: `adv${i % 5}`,
      campaignId: `camp${i % 6}`,
      category: ['shoes', 'travel', 'books'][i % 3]!,
      geos: i % 4 === 0 ? ['fr'] : i % 7 === 0 ? ['de', 'us'] : [],
      active: i % 9 !== 0,
      budgetLeft: i % 11 === 0 ? 0 : Infinity,
    });
  }
  store.setCampaignBudget('camp1', 5);
  store.spend(13n, 5); // camp1 (13 % 6 == 1) is now out of money
  const filter = { categories: ['shoes', 'travel'], excludeAdvertisers: ['adv2'], excludeAds: [30n] };
  // Written out independently of AdStore: the user is in 'us'.
  const reference = (i: number) => {
    const active = i % 9 !== 0;
    const budget = i % 11 !== 0 && i % 6 !== 1;
    const geo = i % 4 === 0 ? false : true; // fr-only ads are out; de/us and untargeted ads are in
    const category = ['shoes', 'travel', 'books'][i % 3] !== 'books';
    return active && budget && geo && category && i % 5 !== 2 && i !== 30;
  };
  const p = new Pipeline({
    generators: [listGenerator('all', range(1, n))],
    scenarios: new Scenarios([{ name: 's', generators: ['all'], k: n, overfetch: 1 }]),
    allocator: new StaticAllocator(),
    store,
  });
  const result = await p.retrieve({ userId: 'u', scenario: 's', features: { geo: 'us' }, eligibility: filter });
  assert.equal(result.candidates.map((c) => Number(c.adId)), range(1, n).filter(reference));
  // From France, the ads that target fr appear and those targeting de/us do not.
  const fr = await p.retrieve({ userId: 'u', scenario: 's', features: { geo: 'fr' } });
  const frIds = new Set(fr.candidates.map((c) => Number(c.adId)));
  assert.ok(frIds.has(4) && !frIds.has(7) && !frIds.has(9) && !frIds.has(11) && !frIds.has(13));
});

pipeline('bad requests: unknown scenario, out-of-range k, wrong user embedding, unknown generator', async () => {
  const engine = new CandidateEngine({ dim: 4 });
  await engine.upsertAds([{ id: 1n, embedding: new Float32Array([1, 0, 0, 0]) }]);
  await engine.retrieve({ userId: 'u', scenario: 'nope' }).then(
    () => assert.unreachable(),
    (e) => {
      assert.instance(e, UnknownScenarioError);
      assert.is((e as UnknownScenarioError).code, 'ERR_UNKNOWN_SCENARIO');
      assert.match((e as Error).message, /Expected one of 'home', 'search', 'related' for scenario but received the string 'nope'/);
    },
  );
  await engine.retrieve({ userId: 'u', scenario: 'home', k: 0 }).then(() => assert.unreachable(), (e) => {
    assert.instance(e, InvalidArgumentError);
    assert.match((e as Error).message, /Expected an integer between 1 and 100000 for request.k but received number 0/);
  });
  await engine.retrieve({ userId: 'u', scenario: 'home', features: { embedding: new Float32Array(3) } }).then(() => assert.unreachable(), (e) => assert.instance(e, DimensionMismatchError));
  assert.throws(() => new Pipeline({ generators: [], scenarios: new Scenarios([{ name: 's', generators: ['ghost'] }]), allocator: new StaticAllocator(), store: new AdStore() }), (e: unknown) => e instanceof UnknownGeneratorError);
  await engine.close();
});

const generators = suite('generators over real indexes');

generators('two-tower equals a float64 brute force, through re-embedding and removal', async () => {
  const dim = 16;
  const n = 3000;
  const engine = new CandidateEngine({ dim, scenarios: [{ name: 's', generators: ['two-tower'], k: 50, deadlineMs: 2000 }] });
  let vectors = randomVectors(n, dim, 11);
  await engine.upsertAds(range(1, n).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim) })));
  // Re-embed 200 ads and remove 100: the index keeps tombstones, searches must not show them.
  const fresh = randomVectors(200, dim, 12);
  await engine.upsertAds(range(1, 200).map((i) => ({ id: BigInt(i), embedding: fresh.slice((i - 1) * dim, i * dim) })));
  vectors = vectors.slice();
  vectors.set(fresh, 0);
  await engine.removeAds(range(201, 300).map(BigInt));
  const query = randomVectors(1, dim, 13);
  const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { embedding: query } });
  const reference = range(1, n)
    .filter((i) => i < 201 || i > 300)
    .map((i) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += query[j]! * vectors[(i - 1) * dim + j]!;
      return [i, s] as const;
    })
    .sort((a, b) => b[1] - a[1])
    .slice(0, 50);
  assert.equal(result.candidates.map((c) => Number(c.adId)), reference.map(([i]) => i));
  result.candidates.forEach((c, i) => assert.ok(Math.abs(c.score - reference[i]![1]) < 1e-4));
  await engine.close();
});

generators('AdIndex corpus: eligibility is filtered inside the search and follows attribute changes', async () => {
  const dim = 8;
  const n = 400;
  const engine = new CandidateEngine({ dim, scenarios: [{ name: 's', generators: ['two-tower'], k: 30, deadlineMs: 5000, overfetch: 1 }] });
  const vectors = randomVectors(n, dim, 51);
  await engine.upsertAds(range(1, n).map((i) => ({
    id: BigInt(i),
    embedding: vectors.slice((i - 1) * dim, i * dim),
    advertiserId: `adv${i % 5}`,
    campaignId: `camp${i % 6}`,
    category: ['shoes', 'travel'][i % 2]!,
    geos: i % 4 === 0 ? ['fr'] : i % 7 === 0 ? ['de', 'us'] : [],
    active: i % 9 !== 0,
  })));
  const query = randomVectors(1, dim, 52);
  const dot = (i: number) => query.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  const expected = (ok: (i: number) => boolean) => range(1, n).filter(ok).sort((a, b) => dot(b) - dot(a)).slice(0, 30);
  const base = (i: number) => i % 9 !== 0 && i % 4 !== 0;
  const generator = engine.pipeline.generator('two-tower')!;
  const input = { request: { userId: 'u', scenario: 's' }, features: { embedding: query, geo: 'us' }, scenario: 's', quota: 30, fetch: 30, signal: new AbortController().signal };
  const direct = await generator.generate(input);
  assert.equal(direct.map((c) => Number(c.adId)), expected(base), 'the generator alone returns only eligible ads');
  assert.ok(isMarkedEligible(direct), 'and says so, so the pipeline skips its own check');
  const filtered = await generator.generate({ ...input, request: { userId: 'u', scenario: 's', eligibility: { categories: ['shoes'], excludeAdvertisers: ['adv1'], excludeAds: [2n] } } });
  assert.equal(filtered.map((c) => Number(c.adId)), expected((i) => base(i) && i % 2 === 0 && i % 5 !== 1 && i !== 2));
  // A campaign out of money, an ad paused without a new embedding: both leave the results.
  await engine.setCampaignBudgets([{ campaignId: 'camp1', budget: 3 }]);
  await engine.spend([{ id: 1n, amount: 3 }]);
  await engine.upsertAds([{ id: 10n, active: false }]);
  const ok = (i: number) => base(i) && i % 6 !== 1 && i !== 10;
  const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { embedding: query, geo: 'us' } });
  assert.equal(result.candidates.map((c) => Number(c.adId)), expected(ok));
  await new Promise((r) => setTimeout(r, 50)); // the rewrites have landed: the generator's answer is trusted again
  const after = await generator.generate(input);
  assert.equal(after.map((c) => Number(c.adId)), expected(ok));
  assert.ok(isMarkedEligible(after));
  assert.equal(engine.store.get(10n)!.active, false);
  assert.equal(engine.store.get(12n)!.geos, ['fr']);
  assert.equal(engine.store.get(13n)!.geos, []);
  assert.equal(engine.store.get(14n)!.geos, ['de', 'us']);
  await engine.close();
});

generators('compiled-filter cache: names holding separators never share another filter\'s entry', async () => {
  const dim = 8;
  const n = 200;
  const engine = new CandidateEngine({ dim, scenarios: [{ name: 's', generators: ['two-tower'], k: 20, deadlineMs: 5000, overfetch: 1 }] });
  const vectors = randomVectors(n, dim, 61);
  // Every ad is in category 'x'; advertisers 'y' and 'z' alternate.
  await engine.upsertAds(range(1, n).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim), category: 'x', advertiserId: i % 2 ? 'y' : 'z' })));
  const generator = engine.pipeline.generator('two-tower')!;
  const query = randomVectors(1, dim, 62);
  const ask = (eligibility: EligibilityFilter) =>
    generator.generate({ request: { userId: 'u', scenario: 's', eligibility }, features: { embedding: query }, scenario: 's', quota: 20, fetch: 20, signal: new AbortController().signal });
  // The crafted pair: with names joined on \u0000, both had the key "\u0001\u0000cx\u0000ay".
  const crafted = { categories: ['x\u0000ay'] };
  const honest = { categories: ['x'], excludeAdvertisers: ['y'] };
  assert.is.not(requestEligibility(undefined, crafted).key, requestEligibility(undefined, honest).key);
  assert.is((await ask(crafted)).length, 0, 'no ad is in the crafted category');
  const served = await ask(honest);
  assert.is(served.length, 20, 'the honest filter is compiled for itself, not taken from the crafted one');
  assert.ok(served.every((c) => c.adId % 2n === 0n), 'advertiser y stays excluded');
  // The other order: the honest filter first, then the crafted one must not inherit it.
  assert.is((await ask({ categories: ['x'], excludeAdvertisers: ['z'] })).length, 20);
  assert.is((await ask({ categories: ['x\u0000az'] })).length, 0);
  // Sets, not lists: order and repeats do not make a new entry.
  assert.is(requestEligibility('fr', { categories: ['b', 'a', 'a'] }).key, requestEligibility('fr', { categories: ['a', 'b'] }).key);
  assert.is.not(requestEligibility(undefined, { categories: [] }).key, requestEligibility(undefined, {}).key, 'an empty list admits nothing; no list admits all');
  // Geo targeting sets are keyed the same way: one geo named 'fr\u0000de' is not the set [fr, de].
  await engine.upsertAds([{ id: 9001n, geos: ['fr\u0000de'] }]);
  await engine.upsertAds([{ id: 9002n, geos: ['fr', 'de'] }]);
  assert.ok(engine.store.eligible(9002n, 'fr', undefined));
  assert.not.ok(engine.store.eligible(9001n, 'fr', undefined));
  assert.equal(engine.store.get(9002n)!.geos, ['fr', 'de']);
  await engine.close();
});

generators('AdIndex corpus: attribute-only changes rewrite attributes, not embeddings, and no vector copy is kept', async () => {
  const dim = 8;
  const n = 120;
  const engine = new CandidateEngine({ dim, scenarios: [{ name: 's', generators: ['two-tower'], k: 20, deadlineMs: 5000, overfetch: 1 }] });
  const vectors = randomVectors(n, dim, 61);
  await engine.upsertAds(range(1, n).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim), campaignId: `camp${i % 3}`, budgetLeft: 10 })));
  const index = engine.corpus.behavioural;
  const calls = { upsert: 0, setAttributes: 0, rows: 0 };
  const upsert = index.upsert.bind(index);
  const setAttributes = index.setAttributes.bind(index);
  index.upsert = (...args: Parameters<AdIndex['upsert']>) => (calls.upsert++, upsert(...args));
  index.setAttributes = (ids, attributes) => {
    calls.setAttributes++;
    assert.ok(attributes instanceof Uint32Array, 'attributes travel packed');
    calls.rows += (attributes as Uint32Array).length / 6;
    return setAttributes(ids, attributes);
  };
  const query = randomVectors(1, dim, 62);
  const dot = (i: number) => query.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  const expected = (ok: (i: number) => boolean) => range(1, n).filter(ok).sort((a, b) => dot(b) - dot(a)).slice(0, 20);
  await engine.setCampaignBudgets([{ campaignId: 'camp1', budget: 5 }]);
  await engine.spend([{ id: 1n, amount: 5 }]); // camp1 runs out: a third of the ads
  await engine.spend([{ id: 3n, amount: 10 }]); // ad 3 runs out on its own
  await engine.upsertAds([{ id: 6n, active: false }]);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(calls.upsert, 0, 'no re-upsert');
  assert.ok(calls.setAttributes >= 1);
  assert.is(calls.rows, 40 + 2, 'only the ads whose native attributes changed');
  const generator = engine.pipeline.generator('two-tower')!;
  const input = { request: { userId: 'u', scenario: 's' }, features: { embedding: query }, scenario: 's', quota: 20, fetch: 20, signal: new AbortController().signal };
  const after = await generator.generate(input);
  const ok = (i: number) => i % 3 !== 1 && i !== 3 && i !== 6;
  assert.equal(after.map((c) => Number(c.adId)), expected(ok));
  after.forEach((c) => assert.ok(Math.abs(c.score - dot(Number(c.adId))) < 1e-4, 'embeddings untouched'));
  assert.ok(isMarkedEligible(after));
  // Money back: the ads return, again without touching their embeddings.
  await engine.setCampaignBudgets([{ campaignId: 'camp1', budget: 100 }]);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(calls.upsert, 0);
  const back = await generator.generate(input);
  assert.equal(back.map((c) => Number(c.adId)), expected((i) => i !== 3 && i !== 6));
  await engine.close();
});

generators('learned scorer, two-stage: exact re-rank of the first stage equals brute force on the short-term vector', async () => {
  const dim = 8;
  const n = 500;
  const engine = new CandidateEngine({ dim, scorerMode: 'two-stage', scenarios: [{ name: 's', generators: ['scorer'], k: 10, overfetch: 1 }] });
  const vectors = randomVectors(n, dim, 21);
  await engine.upsertAds(range(1, n).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim) })));
  const embedding = randomVectors(1, dim, 22);
  const shortTerm = randomVectors(1, dim, 23);
  const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { embedding, shortTerm } });
  const dot = (q: Float32Array, i: number) => q.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  // Reference: the first stage's K' = 4 x 10 by the long-term vector, re-ranked by the short-term one.
  const firstStage = range(1, n).sort((a, b) => dot(embedding, b) - dot(embedding, a)).slice(0, 40);
  const expected = firstStage.sort((a, b) => dot(shortTerm, b) - dot(shortTerm, a)).slice(0, 10);
  assert.equal(result.candidates.map((c) => Number(c.adId)), expected);
  await engine.close();
});

generators('two-stage written once: the engine, TwoStageRetriever and a float64 re-rank of the first stage agree (filter, exclusions, scenario blend)', async () => {
  const dim = 8;
  const n = 600;
  const vectors = randomVectors(n, dim, 71);
  const config = {
    format: 'cangen-scorer', version: 1, kind: 'mlp', userDim: dim, itemDim: dim, heads: ['click', 'conversion'],
    mlp: { hidden: [16], activation: 'relu', features: ['user', 'item', 'cross'] }, scenarios: { s: { click: 1, conversion: 0.5 } },
  };
  const tensors = randomTensors(config);
  // The engine attaches the model to its corpus: the model reads the ads the engine is given.
  const model = await LearnedScorer.load(writeModel(config, tensors));
  const embedding = randomVectors(1, dim, 72);
  const shortTerm = randomVectors(1, dim, 73);
  const dot = (q: Float32Array, i: number) => q.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  const learned = referenceScores(config, tensors, shortTerm, vectors, [1, 0.5]); // scenario 's' blends the heads
  const l2 = (q: Float32Array, i: number) => -q.reduce((s, v, j) => s + (v - vectors[(i - 1) * dim + j]!) ** 2, 0);
  // Eligible: category 'a' and active; excluded: the three best eligible ads by the first-stage query.
  const eligibleAd = (i: number) => i % 3 !== 0 && i % 11 !== 0;
  const cases = [
    { name: 'dot product', metric: 'ip' as const, scorer: undefined, similarity: dot, score: (i: number) => dot(shortTerm, i) },
    { name: 'l2 distance', metric: 'l2' as const, scorer: undefined, similarity: l2, score: (i: number) => l2(shortTerm, i) },
    { name: 'learned MLP', metric: 'ip' as const, scorer: new LearnedScorerAdapter(model), similarity: dot, score: (i: number) => learned[i - 1]! },
  ];
  for (const { name, metric, scorer, similarity, score } of cases) {
    const byFirstStage = range(1, n).filter(eligibleAd).sort((a, b) => similarity(embedding, b) - similarity(embedding, a));
    const excluded = byFirstStage.slice(0, 3);
    const firstStage = byFirstStage.slice(3, 3 + 4 * 10); // K' = 4 x fetch 10, after the exclusions
    const eligibility = { categories: ['a'], excludeAds: excluded.map(BigInt) };
    const engine = await CandidateEngine.open({ dim, metric, scorerMode: 'two-stage', scorer, scenarios: [{ name: 's', generators: ['scorer'], k: 10, overfetch: 1 }] });
    if (scorer) assert.is(model.attachedIndex, engine.corpus.behavioural);
    await engine.upsertAds(range(1, n).map((i) => ({
      id: BigInt(i), category: i % 3 === 0 ? 'b' : 'a', active: i % 11 !== 0, embedding: vectors.slice((i - 1) * dim, i * dim),
    })));
    const expected = [...firstStage].sort((a, b) => score(b) - score(a)).slice(0, 10);
    const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { embedding, shortTerm }, eligibility });
    assert.equal(result.candidates.map((c) => Number(c.adId)), expected, `${name}: the engine`);
    // Scores larger-is-better ('l2' distances negated).
    result.candidates.forEach((c) => assert.ok(Math.abs(c.score - score(Number(c.adId))) < 1e-4 * Math.max(1, Math.abs(c.score)), `${name}: score of ${c.adId}`));
    // TwoStageRetriever called directly on the engine's index, re-ranker and compiled filter.
    const retriever = new TwoStageRetriever({ firstStage: engine.corpus.behavioural, scorer: scorer?.reranker ?? new IndexReranker(engine.corpus.behavioural), candidates: 40 });
    const eligible = compiledFilter(await engine.embeddings.filterFor(requestEligibility(undefined, eligibility)), 'the test');
    const direct = await retriever.search(shortTerm, 10, {
      firstStageQueries: embedding, eligible, exclude: new Set(excluded.map(BigInt)), ...(scorer ? { scenario: 's' } : {}),
    });
    assert.equal(Array.from(direct.results.row(0).ids, Number), expected, `${name}: TwoStageRetriever`);
    await engine.close();
  }
  // A scorer that can only re-score ids the old way has no place in two-stage mode: it says what it needs.
  const legacy = { name: 'legacy', score: async () => new Float64Array() };
  assert.throws(() => new ScorerGenerator({ scorer: legacy, mode: 'two-stage', firstStage: new EmbeddingCorpus(new AdIndex({ dim }), new AdStore()) }), /Expected a scorer with a reranker/);
  model.close();
});

generators('a learned scorer in full mode reads the engine\'s corpus: filtered inside its scan, removals, re-embeddings and compaction seen', async () => {
  const dim = 8;
  const n = 300;
  const config = {
    format: 'cangen-scorer', version: 1, kind: 'mol', userDim: dim, itemDim: dim, heads: ['click'],
    mol: { queryComponents: 2, itemComponents: 2, componentDim: 4, gatingWidth: 8, temperature: 0.3 },
  };
  const tensors = randomTensors(config);
  const model = await LearnedScorer.load(writeModel(config, tensors));
  const engine = await CandidateEngine.open({ dim, scorer: new LearnedScorerAdapter(model), scenarios: [{ name: 's', generators: ['scorer'], k: 10, overfetch: 1 }] });
  const vectors = new Map<number, Float32Array>();
  const write = async (ids: number[], seed: number) => {
    const v = randomVectors(ids.length, dim, seed);
    ids.forEach((id, i) => vectors.set(id, v.slice(i * dim, (i + 1) * dim)));
    await engine.upsertAds(ids.map((id) => ({ id: BigInt(id), category: id % 3 === 0 ? 'b' : 'a', active: id % 7 !== 0, embedding: vectors.get(id)! })));
  };
  await write(range(1, n), 81);
  const user = randomVectors(1, dim, 82);
  const eligibleAd = (id: number) => id % 3 !== 0 && id % 7 !== 0;
  const check = async (what: string) => {
    const ids = [...vectors.keys()].filter(eligibleAd);
    const x = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => x.set(vectors.get(id)!, i * dim));
    const reference = referenceScores(config, tensors, user, x, [1]);
    const expected = ids.map((id, i) => ({ id, score: reference[i]! })).sort((a, b) => b.score - a.score).slice(0, 10);
    const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { shortTerm: user }, eligibility: { categories: ['a'] } });
    assert.equal(result.candidates.map((c) => Number(c.adId)), expected.map((e) => e.id), what);
    result.candidates.forEach((c, i) => assert.ok(Math.abs(c.score - expected[i]!.score) < 1e-4, `${what}: score of ${c.adId}`));
    return expected.map((e) => e.id);
  };
  const first = await check('after the first upserts');
  await engine.removeAds(first.slice(0, 3).map(BigInt));
  first.slice(0, 3).forEach((id) => vectors.delete(id));
  await check('after removing the three best');
  await write(first.slice(3, 8), 83);  // re-embedded: dead slots, new vectors
  await check('after re-embedding');
  assert.equal(await engine.corpus.compact(0), ['behavioural']);
  await check('after compaction');
  await engine.close();

  // A model holding ads of its own cannot read the corpus's: open() says so and closes what it opened.
  const own = await LearnedScorer.load(writeModel(config, tensors));
  await own.add([1n], randomVectors(1, dim, 84));
  await CandidateEngine.open({ dim, scorer: new LearnedScorerAdapter(own) }).then(
    () => assert.unreachable('opened'),
    (error) => assert.match((error as Error).message, /no ads of its own/),
  );
  // Built with `new`, the same engine stays up: `ready` rejects, and so do requests that use the scorer.
  const built = new CandidateEngine({ dim, scorer: new LearnedScorerAdapter(own), scenarios: [{ name: 's', generators: ['scorer'], k: 3, deadlineMs: 5000 }] });
  await new Promise((resolve) => setTimeout(resolve, 50));  // an unhandled rejection would have ended the process here
  await built.ready.then(() => assert.unreachable('ready'), (error) => assert.match((error as Error).message, /no ads of its own/));
  await built.retrieve({ userId: 'u', scenario: 's', features: { shortTerm: user } }).then(
    () => assert.unreachable('retrieved'),
    (error) => assert.match((error as Error).message, /no ads of its own/),
  );
  await built.close();
});

generators('content generator finds cold-start ads by text; they graduate with an embedding', async () => {
  const engine = new CandidateEngine({ dim: 4, scenarios: [{ name: 's', generators: ['content', 'two-tower'], k: 3, staticShares: { content: 1, 'two-tower': 0 } }], allocator: 'static' });
  const cold = await engine.upsertAds([
    { id: 1n, title: 'Trail running shoes, waterproof', category: 'sports' },
    { id: 2n, title: 'Weekend city break in Lisbon', category: 'travel' },
    { id: 3n, title: 'Noise cancelling headphones', category: 'electronics' },
  ]);
  assert.equal(cold, { embedded: 0, cold: 3, seq: 1 }, 'the first write of a new corpus is sequence 1');
  const result = await engine.retrieve({ userId: 'u', scenario: 's', k: 1, features: { text: 'waterproof running shoe' } });
  assert.equal(result.candidates.map((c) => [c.adId, c.source]), [[1n, 'content']]);
  await engine.upsertAds([{ id: 1n, embedding: new Float32Array([1, 0, 0, 0]) }]);
  const after = await engine.retrieve({ userId: 'u', scenario: 's', k: 3, features: { text: 'waterproof running shoe' } });
  assert.ok(!after.candidates.some((c) => c.adId === 1n && c.source === 'content'), 'graduated ad left the content corpus');
  await engine.close();
});

generators('hashed n-gram embedder: deterministic, normalised, similar texts closer', async () => {
  const e = new HashedNgramEmbedder({ dim: 128 });
  const v = await e.embed(['red running shoes', 'running shoes in red', 'mortgage rates today', '']);
  const row = (i: number) => v.subarray(i * 128, (i + 1) * 128);
  const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, j) => s + x * b[j]!, 0);
  assert.ok(Math.abs(cos(row(0), row(0)) - 1) < 1e-5);
  assert.ok(cos(row(0), row(1)) > 0.5 && cos(row(0), row(2)) < 0.2);
  assert.ok(row(3).every((x) => x === 0));
  assert.equal(Array.from(await e.embed(['red running shoes'])), Array.from(row(0)));
  assert.throws(() => new HashedNgramEmbedder({ dim: 2 }), /Expected an integer between 8 and 65536/);
});

/** A local server that speaks the OpenAI embeddings wire format. */
async function fakeEmbeddings(handler: (body: { model: string; input: string[] }, req: IncomingMessage) => { status?: number; body: unknown; delayMs?: number }) {
  const requests: { model: string; input: string[]; auth?: string }[] = [];
  const server: Server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as { model: string; input: string[] };
      requests.push({ ...body, auth: req.headers.authorization });
      const reply = handler(body, req);
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
      }, reply.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, requests, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

generators('OpenAI-compatible embedder against a local server: batching, auth, order, errors', async () => {
  const vector = (text: string) => [text.length, text.charCodeAt(0), 1];
  const server = await fakeEmbeddings((body, req) => {
    if (req.url !== '/v1/embeddings') return { status: 404, body: { error: { message: 'not found' } } };
    if (body.input.includes('boom')) return { status: 400, body: { error: { message: 'input too long' } } };
    if (body.input.includes('bad-shape')) return { body: { data: [{ embedding: [1, 2], index: 0 }] } };
    if (body.input.includes('slow')) return { body: {}, delayMs: 500 };
    // Reply out of order, as servers may: index says where each belongs.
    return { body: { object: 'list', model: body.model, data: body.input.map((t, index) => ({ object: 'embedding', index, embedding: vector(t) })).reverse() } };
  });
  try {
    const e = new OpenAIEmbedder({ baseUrl: server.url, model: 'text-embed-small', apiKey: 'sk-test', batchSize: 2, timeoutMs: 200 });
    const texts = ['alpha', 'be', 'gamma!', 'd'];
    const out = await e.embed(texts);
    assert.is(e.dim, 3);
    assert.equal(Array.from(out), texts.flatMap(vector));
    assert.is(server.requests.length, 2);
    assert.equal(server.requests[0], { model: 'text-embed-small', input: ['alpha', 'be'], auth: 'Bearer sk-test', encoding_format: 'float' } as never);
    const fails = async (input: string[], text: RegExp, status?: number) => {
      await e.embed(input).then(() => assert.unreachable(), (error) => {
        assert.instance(error, EmbedderError);
        assert.is((error as EmbedderError).code, 'ERR_EMBEDDER');
        assert.match((error as Error).message, text);
        assert.is((error as EmbedderError).status, status);
      });
    };
    await fails(['boom'], /returned HTTP 400: input too long/, 400);
    await fails(['bad-shape'], /Expected an embedding of 3 numbers at data\[0\]/);
    await fails(['slow'], /no reply within 200 ms/);
    const missing = new OpenAIEmbedder({ baseUrl: `${server.url}/nothing`, model: 'm' });
    await missing.embed(['x']).then(() => assert.unreachable(), (error) => assert.match((error as Error).message, /HTTP 404: not found/));
    assert.throws(() => new OpenAIEmbedder({ baseUrl: 'ftp://x', model: 'm' }), /Expected an http\(s\) URL for OpenAIEmbedder options.baseUrl but received the string 'ftp:\/\/x'/);
  } finally {
    await server.close();
  }
});

generators('the content generator works over the HTTP embedder too', async () => {
  const server = await fakeEmbeddings((body) => ({ body: { data: body.input.map((t, index) => ({ index, embedding: Array.from(new HashedNgramEmbedder({ dim: 32 }).embedOne(t)) })) } }));
  try {
    const engine = new CandidateEngine({
      dim: 4,
      embedder: new OpenAIEmbedder({ baseUrl: server.url, model: 'm', dim: 32 }),
      scenarios: [{ name: 's', generators: ['content'], k: 1 }],
    });
    await engine.upsertAds([{ id: 5n, title: 'garden furniture sale' }, { id: 6n, title: 'cloud hosting credits' }]);
    const result = await engine.retrieve({ userId: 'u', scenario: 's', features: { text: 'hosting in the cloud' } });
    assert.equal(result.candidates.map((c) => c.adId), [6n]);
    await engine.close();
  } finally {
    await server.close();
  }
});

generators('feedback by request id reaches the allocator and popularity; concurrency with upserts', async () => {
  const dim = 8;
  const engine = new CandidateEngine({ dim, allocatorOptions: { seed: 1 } });
  const vectors = randomVectors(400, dim, 31);
  await engine.upsertAds(range(1, 400).map((i) => ({ id: BigInt(i), embedding: vectors.slice((i - 1) * dim, i * dim), category: `c${i % 5}` })));
  const queries = randomVectors(40, dim, 32);
  // 40 requests race 10 upserts of new ads.
  const [results] = await Promise.all([
    Promise.all(range(0, 39).map((q) => engine.retrieve({ userId: `u${q}`, scenario: 'related', deadlineMs: 5000, features: { embedding: queries.slice(q * dim, (q + 1) * dim) } }))),
    Promise.all(range(0, 9).map((b) => engine.upsertAds(range(0, 9).map((i) => ({ id: BigInt(1000 + b * 10 + i), embedding: randomVectors(1, dim, 100 + b * 10 + i) }))))),
  ]);
  for (const r of results) {
    assert.is(r.candidates.length, 100);
    assert.is(new Set(r.candidates.map((c) => c.adId)).size, 100);
  }
  assert.is(engine.corpus.size, 500);
  const first = results[0]!;
  const clicked = first.candidates[3]!;
  const outcome = engine.feedback([
    { requestId: first.requestId, adId: clicked.adId, type: 'click' },
    { requestId: first.requestId, adId: 99999n, type: 'click' },
    { requestId: 'unknown', adId: 1n, type: 'impression' },
  ]);
  assert.equal(outcome, { accepted: 1, unmatched: 2 });
  const state = (engine.allocator as { saveState(): { scenarios: Record<string, { generators: string[]; reward: number[] }> } }).saveState();
  const related = state.scenarios.related!;
  const row = related.generators.indexOf(clicked.source);
  assert.is(related.reward.slice(row * 20, row * 20 + 20).reduce((a, b) => a + b, 0), 1);
  const popular = await engine.popularity.generate({ request: { userId: 'u', scenario: 'related' }, features: {}, scenario: 'related', quota: 1, fetch: 1, signal: new AbortController().signal });
  assert.equal(popular.map((c) => c.adId), [clicked.adId]);
  assert.throws(() => engine.feedback([{ requestId: first.requestId, adId: 1n, type: 'purchase' as never }]), /Expected one of 'impression', 'click', 'conversion' for events\[0\].type/);
  await engine.close();
});

generators('a LearnedScorer from lib/scorer plugs in: full scan and two-stage equal brute force', async () => {
  const dim = 8;
  const n = 400;
  const model = await LearnedScorer.load(writeModel({ format: 'cangen-scorer', version: 1, kind: 'dot', userDim: dim, itemDim: dim, heads: ['score'] }, {}));
  const vectors = randomVectors(n, dim, 41);
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
  await model.add(ids, vectors);
  const firstIndex = new AdIndex({ dim });
  await firstIndex.upsert(ids, vectors);
  const firstStage = new EmbeddingCorpus(firstIndex, new AdStore());
  const user = randomVectors(1, dim, 42);
  const dot = (i: number) => user.reduce((s, v, j) => s + v * vectors[(i - 1) * dim + j]!, 0);
  const exact = range(1, n).sort((a, b) => dot(b) - dot(a));
  const input = { request: { userId: 'u', scenario: 's' }, features: { shortTerm: user, embedding: user }, scenario: 's', quota: 10, fetch: 10, signal: new AbortController().signal };
  const full = await new ScorerGenerator({ scorer: new LearnedScorerAdapter(model), mode: 'full' }).generate(input);
  assert.equal(full.map((c) => Number(c.adId)), exact.slice(0, 10));
  const twoStage = await new ScorerGenerator({ scorer: new LearnedScorerAdapter(model), mode: 'two-stage', firstStage }).generate(input);
  assert.equal(twoStage.map((c) => Number(c.adId)), exact.slice(0, 10));
  twoStage.forEach((c) => assert.ok(Math.abs(c.score - dot(Number(c.adId))) < 1e-4));
  model.close?.();
  localIndex(firstStage.index, 'the test').close();
});

pipeline.run();
generators.run();
