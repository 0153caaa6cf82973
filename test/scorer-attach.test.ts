import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, LearnedScorer, type AdAttributes, type IndexKind } from '../lib';
import { randomVectors, rng } from './helpers/random';
import { rejects } from './helpers/rejects';
import { randomTensors, referenceScores, writeModel, type Config, type Tensors } from './helpers/scorer-model';

const attach = suite('a learned scorer attached to an AdIndex reads its ads, removals and filters');

const base = { format: 'cangen-scorer', version: 1 };
const mol: Config = {
  ...base, kind: 'mol', userDim: 10, itemDim: 12, heads: ['click', 'conversion'],
  mol: { queryComponents: 3, itemComponents: 2, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
  scenarios: { s: { click: 1, conversion: 0.5 } }, defaultScenario: 's',
};
const mlp: Config = { ...base, kind: 'mlp', userDim: 12, itemDim: 12, heads: ['click'], mlp: { hidden: [16, 8] } };
const dim = 12;

/** The ads as they should be: vectors and attributes by id (the independent reference). */
class Truth {
  readonly ads = new Map<bigint, { vector: Float32Array; attributes: AdAttributes }>();
  upsert(ids: readonly bigint[], vectors: Float32Array, attributes: AdAttributes[]) {
    ids.forEach((id, i) => this.ads.set(id, { vector: vectors.slice(i * dim, (i + 1) * dim), attributes: attributes[i]! }));
  }
  /** Float64 top-k of the live ads `admit` accepts, per user. */
  topK(c: Config, t: Tensors, users: Float32Array, k: number, weights: number[], admit: (a: AdAttributes) => boolean) {
    const live = [...this.ads].filter(([, ad]) => admit(ad.attributes));
    const vectors = new Float32Array(live.length * dim);
    live.forEach(([, ad], i) => vectors.set(ad.vector, i * dim));
    const scores = referenceScores(c, t, users, vectors, weights);
    const nu = users.length / c.userDim;
    return Array.from({ length: nu }, (_, u) =>
      live.map(([id], i) => ({ id, score: scores[u * live.length + i]! })).sort((a, b) => b.score - a.score).slice(0, k));
  }
}

function assertTopK(got: Awaited<ReturnType<LearnedScorer['search']>>, expected: { id: bigint; score: number }[][], what: string) {
  expected.forEach((want, u) => {
    const row = got.row(u);
    assert.is(row.ids.length, want.length, `${what}: user ${u} count`);
    row.ids.forEach((id, r) => {
      // Ranks may swap between near-ties; the score at each rank and each id's own score must hold.
      const tol = 1e-4 * Math.max(1, Math.abs(want[r]!.score));
      assert.ok(Math.abs(row.scores[r]! - want[r]!.score) <= tol, `${what}: user ${u} rank ${r}: ${row.scores[r]} vs ${want[r]!.score}`);
      const own = want.find((w) => w.id === id);
      if (own) assert.ok(Math.abs(own.score - row.scores[r]!) <= tol, `${what}: id ${id} scored ${row.scores[r]} vs ${own.score}`);
    });
  });
}

const attributesOf = (i: number): AdAttributes => ({ category: i % 3, active: i % 5 !== 0 });

for (const [name, config, kind] of [['mol', mol, 'flat'], ['mol', mol, 'hnsw'], ['mlp', mlp, 'ivf-sq8']] as [string, Config, IndexKind][]) {
  attach(`${name} on ${kind}: upserts, re-embeddings, removals, attribute changes and compaction equal float64 brute force`, async () => {
    const tensors = randomTensors(config);
    const scorer = await LearnedScorer.load(writeModel(config, tensors));
    const index = new AdIndex({ dim, kind, nlist: 8, efSearch: 256, storeVectors: true });
    const truth = new Truth();
    const weights = config.kind === 'mol' ? [1, 0.5] : [1];
    const users = randomVectors(3, config.userDim, 41);
    const random = rng(7);

    // Ads written before the scorer attaches are precomputed by attach().
    const first = Array.from({ length: 300 }, (_, i) => BigInt(i + 1));
    const v1 = randomVectors(first.length, dim, 1);
    if (kind === 'ivf-sq8') await index.train(randomVectors(400, dim, 9));
    await index.upsert(first, v1, first.map((_, i) => attributesOf(i)));
    truth.upsert(first, v1, first.map((_, i) => attributesOf(i)));
    await scorer.attach(index);
    assert.is(scorer.attachedIndex, index);
    assert.is(scorer.size, 300);

    const check = async (what: string) => {
      assert.is(scorer.size, truth.ads.size, `${what}: size`);
      assertTopK(await scorer.search(users, 20), truth.topK(config, tensors, users, 20, weights, () => true), `${what}, unfiltered`);
      const filter = await index.filter({ categories: [1], active: true });
      const admit = (a: AdAttributes) => a.category === 1 && a.active !== false;
      assertTopK(await scorer.search(users, 20, { eligible: filter }), truth.topK(config, tensors, users, 20, weights, admit), `${what}, filtered`);
    };
    await check('after attach');

    // Re-embed a third of the ads (each leaves a dead slot), add new ones, remove some, pause some.
    const reembedded = first.filter(() => random() < 0.33);
    const v2 = randomVectors(reembedded.length, dim, 2);
    await index.upsert(reembedded, v2, reembedded.map((id) => attributesOf(Number(id) + 1)));
    truth.upsert(reembedded, v2, reembedded.map((id) => attributesOf(Number(id) + 1)));
    const added = Array.from({ length: 150 }, (_, i) => BigInt(1000 + i));
    const v3 = randomVectors(added.length, dim, 3);
    await index.upsert(added, v3, added.map((_, i) => attributesOf(i)));
    truth.upsert(added, v3, added.map((_, i) => attributesOf(i)));
    const removed = [...truth.ads.keys()].filter(() => random() < 0.2);
    assert.is(await index.remove(removed), removed.length);
    removed.forEach((id) => truth.ads.delete(id));
    const paused = [...truth.ads.keys()].filter(() => random() < 0.2);
    const pausedAttributes = paused.map((id) => ({ ...truth.ads.get(id)!.attributes, active: false }));
    await index.setAttributes(paused, pausedAttributes);
    paused.forEach((id, i) => (truth.ads.get(id)!.attributes = pausedAttributes[i]!));
    await check('after writes');

    // Candidates: removed ids are skipped (a first stage may have seen them), live ones ranked.
    const live = [...truth.ads.keys()].slice(0, 10);
    const candidates = BigInt64Array.from([...live, ...removed.slice(0, 5)]);
    const ranked = await scorer.search(users.subarray(0, config.userDim), 15, { candidates });
    assert.is(ranked.counts[0], live.length);
    for (const id of ranked.row(0).ids) assert.ok(truth.ads.has(id), `candidate ${id} was removed`);

    const before = await index.stats();
    assert.ok(before.deleted > 0);
    await index.compact();
    assert.is((await index.stats()).deleted, 0);
    await check('after compaction');

    // Scores of given ids, and of every live ad, follow the renumbered slots.
    const ids = [...truth.ads.keys()].slice(0, 7);
    const scores = await scorer.score(users, ids);
    const vectors = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => vectors.set(truth.ads.get(id)!.vector, i * dim));
    const reference = referenceScores(config, tensors, users, vectors, weights);
    reference.forEach((r, i) => assert.ok(Math.abs(scores[i]! - r) <= 1e-4 * Math.max(1, Math.abs(r)), `score ${i}`));
    assert.is((await scorer.score(users)).length, 3 * truth.ads.size);

    // Writes after compaction land in the new numbering.
    const late = [5000n, 5001n];
    const v4 = randomVectors(2, dim, 4);
    await index.upsert(late, v4, [attributesOf(1), attributesOf(4)]);
    truth.upsert(late, v4, [attributesOf(1), attributesOf(4)]);
    await check('after a write following compaction');
    scorer.close();
    index.close();
  });
}

attach('what an attached scorer refuses, with actionable errors', async () => {
  const scorer = await LearnedScorer.load(writeModel(mlp, randomTensors(mlp)));
  const wrongDim = new AdIndex({ dim: 8 });
  await rejects(() => scorer.attach(wrongDim), 'ERR_DIMENSION_MISMATCH', /dim 12/);
  const noVectors = new AdIndex({ dim, kind: 'ivf-sq8', nlist: 4, storeVectors: false });
  await noVectors.train(randomVectors(600, dim, 5));
  await rejects(() => scorer.attach(noVectors), 'ERR_INVALID_ARGUMENT', /keeps its vectors/);

  const index = new AdIndex({ dim });
  await index.upsert([1n, 2n], randomVectors(2, dim, 6));
  await scorer.attach(index);
  await rejects(() => scorer.add([3n], randomVectors(1, dim, 6)), 'ERR_INVALID_ARGUMENT', /index\.upsert/);
  await rejects(() => scorer.attach(index), 'ERR_INVALID_ARGUMENT', /already/);
  await rejects(() => scorer.search(randomVectors(1, dim, 7), 2, { eligible: new Uint8Array(2) }), 'ERR_INVALID_ARGUMENT', /no insertion order/);

  // A filter from another index still works, through its ids.
  const other = new AdIndex({ dim });
  await other.upsert([2n, 3n], randomVectors(2, dim, 8));
  const top = await scorer.search(randomVectors(1, dim, 7), 2, { eligible: await other.filter({}) });
  assert.equal(Array.from(top.row(0).ids), [2n]);

  // A scorer with ads of its own does not attach.
  const own = await LearnedScorer.load(writeModel(mlp, randomTensors(mlp)));
  await own.add([9n], randomVectors(1, dim, 9));
  await rejects(() => own.attach(new AdIndex({ dim })), 'ERR_INVALID_ARGUMENT', /no ads of its own/);
});

attach('searches racing writes and compaction see only live ads, scored from their own vectors', async () => {
  const tensors = randomTensors(mlp);
  const scorer = await LearnedScorer.load(writeModel(mlp, tensors));
  const index = new AdIndex({ dim, kind: 'hnsw', efSearch: 128 });
  await scorer.attach(index);
  // Stable ads never change; churned ads are written once, then removed for good. Ads before the
  // stable ones go first, so compaction moves the stable ads to new slots.
  const early = Array.from({ length: 100 }, (_, i) => BigInt(5000 + i));
  await index.upsert(early, randomVectors(early.length, dim, 10));
  const stable = Array.from({ length: 200 }, (_, i) => BigInt(i + 1));
  const stableVectors = randomVectors(stable.length, dim, 11);
  await index.upsert(stable, stableVectors);
  const users = randomVectors(1, dim, 12);
  const stableScores = referenceScores(mlp, tensors, users, stableVectors, [1]);
  const scoreOf = new Map(stable.map((id, i) => [id, stableScores[i]!]));
  const removedBefore = new Set<bigint>();
  let writing = true;
  const writer = (async () => {
    let next = 10_000n;
    await index.remove(early);
    early.forEach((id) => removedBefore.add(id));
    for (let round = 0; round < 30; round++) {
      const batch = Array.from({ length: 40 }, () => next++);
      await index.upsert(batch, randomVectors(batch.length, dim, 100 + round));
      await index.remove(batch.slice(0, 30));
      batch.slice(0, 30).forEach((id) => removedBefore.add(id));
      if (round % 10 === 9) await index.compact();
    }
    writing = false;
  })();
  let searches = 0;
  while (writing) {
    const gone = new Set(removedBefore);  // removed before this search started
    const row = (await scorer.search(users, 50)).row(0);
    row.ids.forEach((id, r) => {
      assert.ok(!gone.has(id), `removed ad ${id} returned`);
      const want = scoreOf.get(id);
      if (want !== undefined) assert.ok(Math.abs(row.scores[r]! - want) <= 1e-4 * Math.max(1, Math.abs(want)), `stable ad ${id} scored ${row.scores[r]} vs ${want}`);
    });
    searches++;
  }
  await writer;
  assert.ok(searches > 5, `only ${searches} searches ran`);
});

attach.run();
