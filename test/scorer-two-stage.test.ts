import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortedError, AdIndex, FlatIndex, IndexReranker, InvalidArgumentError, LearnedScorer, TwoStageRetriever, type SearchResults } from '../lib';
import { randomVectors, rng, sequentialIds } from './helpers/random';
import { randomTensors, referenceScores, writeModel, type Config } from './helpers/scorer-model';

const twoStage = suite('two-stage retrieval');

const config: Config = {
  kind: 'mol', userDim: 16, itemDim: 16, heads: ['click', 'conversion'],
  mol: { queryComponents: 4, itemComponents: 4, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
  scenarios: { home: { click: 1, conversion: 0.5 } }, defaultScenario: 'home',
};

async function setup(n: number) {
  const tensors = randomTensors(config);
  const scorer = await LearnedScorer.load(writeModel(config, tensors));
  const ads = randomVectors(n, 16, 11);
  const ids = sequentialIds(n, 77);
  await scorer.add(ids, ads);
  const index = new FlatIndex({ dim: 16 });
  await index.add(ids, ads);
  return { scorer, index, ids, ads, tensors };
}

/** Float64 dot product of row u of `users` with ad a of `ads` (dim 16). */
const dot64 = (users: Float32Array, u: number, ads: Float32Array, a: number, dim = 16) => {
  let s = 0;
  for (let j = 0; j < dim; j++) s += users[u * dim + j]! * ads[a * dim + j]!;
  return s;
};

twoStage("with K' = corpus size it equals the exact learned top-k", async () => {
  const n = 700;
  const { scorer, index } = await setup(n);
  const users = randomVectors(6, 16, 12);
  const retriever = new TwoStageRetriever({ firstStage: index, scorer, candidates: n });
  const out = await retriever.search(users, 30, { measureRecall: true });
  const exact = await scorer.search(users, 30);
  assert.equal(Array.from(out.results.ids), Array.from(exact.ids));
  assert.equal(Array.from(out.results.scores), Array.from(exact.scores));
  assert.is(out.recall, 1);
  assert.is(out.recallUsers, 6);
  assert.equal(retriever.recallStats, { users: 6, meanRecall: 1 });
});

twoStage("smaller K' ranks only the first stage's candidates, recall measured on a sample", async () => {
  const n = 2000;
  const { scorer, index } = await setup(n);
  const users = randomVectors(8, 16, 13);
  const retriever = new TwoStageRetriever({ firstStage: index, scorer, candidates: 200 });
  const out = await retriever.search(users, 20, { measureRecall: 0.5, scenario: 'home' });
  const first = await index.search(users, 200);
  for (let u = 0; u < 8; u++) {
    const allowed = new Set(first.row(u).ids);
    assert.ok(out.results.row(u).ids.every((id) => allowed.has(id)), `user ${u}: only first-stage candidates`);
  }
  assert.ok(out.recallUsers >= 1 && out.recall! >= 0 && out.recall! <= 1);
  // Eligibility applies to the re-ranking.
  const mask = new Uint8Array(n).map((_, i) => i % 2);
  const filtered = await retriever.search(users, 20, { eligible: mask });
  assert.ok(filtered.results.ids.every((id) => id === -1n || Number(id - 77n) % 2 === 1));
});

twoStage('first-stage queries of another dimension', async () => {
  const n = 300;
  const { scorer, ids } = await setup(n);
  const towers = new FlatIndex({ dim: 5 });
  await towers.add(ids, randomVectors(n, 5, 14));
  const retriever = new TwoStageRetriever({ firstStage: towers, scorer, candidates: 50 });
  const users = randomVectors(2, 16, 15);
  try {
    await retriever.search(users, 10);
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /pass options.firstStageQueries/);
  }
  const out = await retriever.search(users, 10, { firstStageQueries: randomVectors(2, 5, 16) });
  assert.equal(Array.from(out.results.counts), [10, 10]);
});

twoStage('exclude: the first stage hands over K\' other ads, and recall is measured without the excluded ones', async () => {
  const n = 1000;
  const k = 20;
  const kPrime = 50;
  const { scorer, index, ads, tensors } = await setup(n);
  const users = randomVectors(2, 16, 31);
  const learned = referenceScores(config, tensors, users, ads, [1, 0.5]); // the default scenario 'home'
  const byDot = (u: number) => Array.from({ length: n }, (_, a) => a).sort((a, b) => dot64(users, u, ads, b) - dot64(users, u, ads, a));
  const byLearned = (u: number, among: number[]) => [...among].sort((a, b) => learned[u * n + b]! - learned[u * n + a]!);
  // Excluded: every third of each user's first-stage top 60, and each user's five best ads by the scorer.
  const exclude = new Set<bigint>();
  for (let u = 0; u < 2; u++) {
    byDot(u).slice(0, 60).forEach((a, r) => r % 3 === 0 && exclude.add(BigInt(a + 77)));
    byLearned(u, Array.from({ length: n }, (_, a) => a)).slice(0, 5).forEach((a) => exclude.add(BigInt(a + 77)));
  }
  const retriever = new TwoStageRetriever({ firstStage: index, scorer, candidates: kPrime });
  const out = await retriever.search(users, k, { exclude });
  for (let u = 0; u < 2; u++) {
    const firstStage = byDot(u).filter((a) => !exclude.has(BigInt(a + 77))).slice(0, kPrime);
    const expected = byLearned(u, firstStage).slice(0, k).map((a) => BigInt(a + 77));
    assert.equal(Array.from(out.results.row(u).ids), expected, `user ${u}`);
  }
  // K' = every ad: the excluded ones aside, the result is the exact top-k, so recall is 1 only if
  // the reference drops them too (each user's five best are excluded).
  const everything = new TwoStageRetriever({ firstStage: index, scorer, candidates: n });
  const full = await everything.search(users, k, { exclude: [...exclude], measureRecall: true });
  assert.is(full.recall, 1);
  for (let u = 0; u < 2; u++) {
    const rest = Array.from({ length: n }, (_, a) => a).filter((a) => !exclude.has(BigInt(a + 77)));
    assert.equal(Array.from(full.results.row(u).ids), byLearned(u, rest).slice(0, k).map((a) => BigInt(a + 77)));
  }
  try {
    await retriever.search(users, k, { exclude: new Set([1, 2]) as unknown as Set<bigint> });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, InvalidArgumentError);
  }
});

twoStage('an aborted signal stops both stages', async () => {
  const { scorer, index } = await setup(300);
  const retriever = new TwoStageRetriever({ firstStage: index, scorer, candidates: 100 });
  const aborted = new AbortController();
  aborted.abort();
  try {
    await retriever.search(randomVectors(2, 16, 41), 10, { signal: aborted.signal });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, AbortedError);
  }
  // The re-ranking gets the signal too: a first stage that aborts it mid-way stops the scorer.
  const midway = new AbortController();
  const firstStage = { dim: 16, search: async (...args: Parameters<typeof index.search>) => { const r = await index.search(...args); midway.abort(); return r; } };
  const late = new TwoStageRetriever({ firstStage, scorer, candidates: 100 });
  try {
    await late.search(randomVectors(2, 16, 42), 10, { signal: midway.signal });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, AbortedError);
  }
});

twoStage('IndexReranker ranks candidate ids by the index metric like a float64 reference, under eligibility', async () => {
  const n = 500;
  const dim = 16;
  const ads = randomVectors(n, dim, 51);
  const ids = sequentialIds(n, 5);
  const users = randomVectors(3, dim, 52);
  const perUser = 60;
  const next = rng(53);
  // Random ids with repeats and -1 padding, as a first stage's rows may hold.
  const candidates = BigInt64Array.from({ length: 3 * perUser }, () => (next() < 0.1 ? -1n : ids[Math.floor(next() * n)]!));
  for (const metric of ['ip', 'l2'] as const) {
    const index = new AdIndex({ dim, metric });
    await index.upsert(ids, ads, Array.from({ length: n }, (_, i) => ({ category: i % 4 })));
    const reranker = new IndexReranker(index);
    assert.is(reranker.userDim, dim);
    // Larger is better: the dot product, or the negated squared distance.
    const similarity = (u: number, a: number) => {
      if (metric === 'ip') return dot64(users, u, ads, a, dim);
      let s = 0;
      for (let j = 0; j < dim; j++) s += (users[u * dim + j]! - ads[a * dim + j]!) ** 2;
      return -s;
    };
    const check = (results: SearchResults, allowed: (a: number) => boolean, label: string) => {
      for (let u = 0; u < 3; u++) {
        const row = [...new Set(candidates.subarray(u * perUser, (u + 1) * perUser))].filter((id) => id >= 0n).map((id) => Number(id - 5n));
        const expected = row.filter(allowed).sort((a, b) => similarity(u, b) - similarity(u, a)).slice(0, 10);
        const got = results.row(u);
        assert.equal(Array.from(got.ids, (id) => Number(id - 5n)), expected, `${metric} ${label} user ${u}`);
        got.scores.forEach((s, r) => {
          const want = metric === 'ip' ? similarity(u, expected[r]!) : -similarity(u, expected[r]!);
          assert.ok(Math.abs(s - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${metric} ${label} user ${u} rank ${r}: ${s} vs ${want}`);
        });
      }
    };
    check(await reranker.search(users, 10, { candidates }), () => true, 'all');
    const filter = await index.filter({ categories: [1, 2] });
    check(await reranker.search(users, 10, { candidates, eligible: filter }), (a) => a % 4 === 1 || a % 4 === 2, 'compiled filter');
    check(await reranker.search(users, 10, { candidates, eligible: ids.filter((_, a) => a % 2 === 0) }), (a) => a % 2 === 0, 'id list');
    // Without candidates: the index's own (here exact) search.
    const whole = await reranker.search(users, 10, { eligible: filter });
    assert.equal(Array.from(whole.ids), Array.from((await index.search(users, 10, { filter })).ids));
    for (const bad of [{ scenario: 'home' }, { eligible: new Uint8Array(n) }, { eligible: await new AdIndex({ dim }).filter({}) }]) {
      try {
        await reranker.search(users, 10, { candidates, ...bad });
        assert.unreachable();
      } catch (error) {
        assert.instance(error, InvalidArgumentError, JSON.stringify(Object.keys(bad)));
      }
    }
    index.close();
  }
});

twoStage.run();
