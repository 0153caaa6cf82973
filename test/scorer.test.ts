import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LearnedScorer, type SearchResults } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, referenceScores, writeModel, type Config } from './helpers/scorer-model';

const scorers = suite('learned scorers equal the float64 reference');

const base = { format: 'cangen-scorer', version: 1 };
const models: Record<string, Config> = {
  'dot, identity': { ...base, kind: 'dot', userDim: 24, itemDim: 24, heads: ['score'] },
  'dot, projected, 3 heads': {
    ...base, kind: 'dot', userDim: 20, itemDim: 12, heads: ['engagement', 'click', 'conversion'], dot: { projection: true },
    scenarios: { home: { engagement: 1, click: 0.5 }, search: { click: 1, conversion: 2 } }, defaultScenario: 'home',
  },
  'mlp relu [u, x, u*x] 64-32-1': { ...base, kind: 'mlp', userDim: 16, itemDim: 16, heads: ['click'], mlp: { hidden: [64, 32] } },
  'mlp silu + layer norm, [u, x], 3 layers, 2 heads': {
    ...base, kind: 'mlp', userDim: 10, itemDim: 14, heads: ['click', 'conversion'], activation: 'silu',
    mlp: { hidden: [37, 19, 8], features: ['user', 'item'], layerNorm: true },
    scenarios: { feed: { click: 1, conversion: 0.3 } }, defaultScenario: 'feed',
  },
  'mlp [x, u*x] odd widths': { ...base, kind: 'mlp', userDim: 9, itemDim: 9, heads: ['a'], mlp: { hidden: [13], features: ['item', 'cross'] } },
  'mol relu 4 x 2 x 16, gating 32': {
    ...base, kind: 'mol', userDim: 16, itemDim: 12, heads: ['click'],
    mol: { queryComponents: 4, itemComponents: 2, componentDim: 16, gatingWidth: 32, temperature: 0.1 },
  },
  'mol silu 3 x 5 x 7, gating 19, 3 heads': {
    ...base, kind: 'mol', userDim: 11, itemDim: 13, heads: ['engagement', 'click', 'conversion'], activation: 'silu',
    mol: { queryComponents: 3, itemComponents: 5, componentDim: 7, gatingWidth: 19, temperature: 0.5 },
    scenarios: { related: { engagement: 0.2, click: 1, conversion: 0.7 } }, defaultScenario: 'related',
  },
};

/** |got - want| <= 1e-4 relative, scaled by the row's typical magnitude where scores cross zero. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, nu: number, what: string): void {
  const n = want.length / nu;
  for (let u = 0; u < nu; u++) {
    let rms = 0;
    for (let i = 0; i < n; i++) rms += want[u * n + i]! ** 2;
    rms = Math.sqrt(rms / n);
    for (let i = 0; i < n; i++) {
      const w = want[u * n + i]!, g = got[u * n + i]!;
      assert.ok(Math.abs(g - w) <= 1e-4 * Math.max(Math.abs(w), rms, 1e-6), `${what}: user ${u} ad ${i}: ${g} vs reference ${w}`);
    }
  }
}

/** Top-k equals the reference's: same scores rank by rank, same ids except among near-ties. */
function assertTopK(results: SearchResults, reference: Float64Array, ids: BigInt64Array, eligible: (slot: number) => boolean, k: number, what: string): void {
  const n = ids.length;
  for (let u = 0; u < results.queries; u++) {
    const order = Array.from({ length: n }, (_, i) => i).filter(eligible).sort((a, b) => reference[u * n + b]! - reference[u * n + a]!);
    const expected = order.slice(0, k);
    const row = results.row(u);
    assert.is(row.ids.length, expected.length, `${what}: user ${u} count`);
    const scale = Math.max(...expected.map((i) => Math.abs(reference[u * n + i]!)), 1e-6);
    const slotOf = new Map(Array.from(ids, (id, i) => [id, i]));
    for (let r = 0; r < expected.length; r++) {
      const want = reference[u * n + expected[r]!]!;
      assert.ok(Math.abs(row.scores[r]! - want) <= 2e-4 * scale, `${what}: user ${u} rank ${r}: score ${row.scores[r]} vs ${want}`);
      const own = reference[u * n + slotOf.get(row.ids[r]!)!]!;
      assert.ok(Math.abs(own - row.scores[r]!) <= 2e-4 * scale, `${what}: user ${u} rank ${r}: id ${row.ids[r]} scores ${own}`);
      const gapBefore = r > 0 ? Math.abs(reference[u * n + expected[r - 1]!]! - want) : Infinity;
      const gapAfter = r + 1 < order.length ? Math.abs(reference[u * n + order[r + 1]!]! - want) : Infinity;
      if (Math.min(gapBefore, gapAfter) > 4e-4 * scale) assert.is(row.ids[r], ids[expected[r]!], `${what}: user ${u} rank ${r}: id`);
    }
    assert.ok(!row.ids.some((id) => !eligible(slotOf.get(id)!)), `${what}: user ${u}: an ineligible ad was returned`);
    for (let r = expected.length; r < results.k; r++) assert.is(results.ids[u * results.k + r], -1n, `${what}: padding`);
  }
}

let seed = 100;
for (const [name, config] of Object.entries(models)) {
  scorers(name, async () => {
    const tensors = randomTensors(config);
    const scorer = await LearnedScorer.load(writeModel(config, tensors));
    const n = 1000 + (seed % 7); // partial tiles
    const ads = randomVectors(n, config.itemDim, seed++);
    const ids = sequentialIds(n, 5_000_000_000);
    await scorer.add(ids.subarray(0, 333), ads.subarray(0, 333 * config.itemDim)); // two adds: a partly filled tile
    await scorer.add(ids.subarray(333), ads.subarray(333 * config.itemDim));
    assert.is(scorer.size, n);
    const users = randomVectors(5, config.userDim, seed++);
    const weights = Array.from(scorer.headWeights());

    // Raw scores of every ad, and of a listed subset.
    const reference = referenceScores(config, tensors, users, ads, weights);
    assertClose(await scorer.score(users), reference, 5, 'score()');
    const subset = [7, 900, 3, 3];
    const some = await scorer.score(users, subset.map((i) => ids[i]!));
    assertClose(some, Array.from({ length: 5 * 4 }, (_, j) => reference[Math.floor(j / 4) * n + subset[j % 4]!]!), 5, 'score(ids)');

    // Every head alone, through explicit weights.
    for (const [h, head] of config.heads.entries()) {
      const oneHot = config.heads.map((_: string, i: number) => (i === h ? 1 : 0));
      const got = await scorer.score(users.subarray(0, config.userDim), undefined, { weights: { [head]: 1 } });
      assertClose(got, referenceScores(config, tensors, users.subarray(0, config.userDim), ads, oneHot), 1, `head ${head}`);
    }

    // Fused and unfused top-k, all ads and an eligible subset (mask and ids), k beyond the corpus.
    const all = () => true;
    assertTopK(await scorer.search(users, 10), reference, ids, all, 10, 'fused k=10');
    assertTopK(await scorer.search(users, 10, { mode: 'unfused' }), reference, ids, all, 10, 'unfused k=10');
    assertTopK(await scorer.search(users, 300, { threads: 1 }), reference, ids, all, 300, 'fused k=300 one thread');
    const mask = new Uint8Array(n).map((_, i) => (i % 3 === 0 || i > 990 ? 1 : 0));
    assertTopK(await scorer.search(users, 20, { eligible: mask }), reference, ids, (i) => mask[i] === 1, 20, 'mask');
    const eligibleIds = Array.from(ids).filter((_, i) => mask[i] === 1);
    assertTopK(await scorer.search(users, 20, { eligible: eligibleIds, mode: 'unfused' }), reference, ids, (i) => mask[i] === 1, 20, 'ids');
    assertTopK(await scorer.search(users, n + 5), reference, ids, all, n + 5, 'k > n');

    // Candidate lists: only those ads, -1 skipped, repeats once.
    const candidates = new BigInt64Array(5 * 50).fill(-1n);
    for (let u = 0; u < 5; u++) for (let i = 0; i < 40; i++) candidates[u * 50 + i] = ids[(u * 97 + i * 13) % n]!;
    candidates[3] = candidates[4]!;
    const results = await scorer.search(users, 25, { candidates });
    for (let u = 0; u < 5; u++) {
      const allowed = new Set(Array.from(candidates.subarray(u * 50, u * 50 + 50)));
      const rowRef = reference.subarray(u * n, (u + 1) * n);
      const r1 = await scorer.search(users.subarray(u * config.userDim, (u + 1) * config.userDim), 25, { candidates: candidates.subarray(u * 50, u * 50 + 50) });
      assert.equal(Array.from(r1.row(0).ids), Array.from(results.row(u).ids), 'batched and single-user candidate ranking agree');
      assertTopK(r1, rowRef, ids, (i) => allowed.has(ids[i]!), 25, `candidates user ${u}`);
    }
    scorer.close();
  });
}

scorers('bf16 and f16 weights load (converted to f32)', async () => {
  const config = models['mlp relu [u, x, u*x] 64-32-1']!;
  const tensors = randomTensors(config);
  for (const dtype of ['BF16', 'F16'] as const) {
    const scorer = await LearnedScorer.load(writeModel(config, tensors, dtype));
    const ads = randomVectors(50, 16, 3);
    await scorer.add(sequentialIds(50), ads);
    const users = randomVectors(2, 16, 4);
    const exact = referenceScores(config, tensors, users, ads, [1]);
    const got = await scorer.score(users);
    // The stored weights were rounded to 8 (bf16) or 11 (f16) bits: close, not equal.
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - exact[i]!) < 0.05 * Math.max(1, Math.abs(exact[i]!)), `${dtype} ${i}`);
  }
});

scorers('searches racing adds see whole batches', async () => {
  const config = models['mol relu 4 x 2 x 16, gating 32']!;
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  const users = randomVectors(3, 16, 9);
  const pending: Promise<unknown>[] = [];
  for (let b = 0; b < 10; b++) {
    pending.push(scorer.add(sequentialIds(500, b * 500), randomVectors(500, 12, 50 + b)));
    pending.push(scorer.search(users, 50).then((r) => assert.ok(r.counts.every((c) => c === Math.min(50, c)))));
  }
  await Promise.all(pending);
  assert.is(scorer.size, 5000);
  const r = await scorer.search(users, 5000);
  assert.equal(Array.from(r.counts), [5000, 5000, 5000]);
});

scorers.run();
