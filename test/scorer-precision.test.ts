import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, LearnedScorer, type SearchResults } from '../lib';
import { clusteredVectors } from './helpers/clustered';
import { randomVectors, sequentialIds } from './helpers/random';
import { rejects } from './helpers/rejects';
import { randomTensors, referenceScores, writeModel, type Config, type Tensors } from './helpers/scorer-model';

const precision = suite('reduced-precision scorer scans: fp32 scores, measured recall against the fp32 scan');

const models: Record<string, Config> = {
  'mlp relu [u, x, u*x] 48-24': { kind: 'mlp', userDim: 16, itemDim: 16, heads: ['click'], mlp: { hidden: [48, 24] } },
  'mlp silu + layer norm [u, x] (first layer precomputed), 2 heads': {
    kind: 'mlp', userDim: 10, itemDim: 14, heads: ['click', 'conversion'], activation: 'silu',
    mlp: { hidden: [37, 19, 8], features: ['user', 'item'], layerNorm: true },
    scenarios: { feed: { click: 1, conversion: 0.3 } }, defaultScenario: 'feed',
  },
  'mol relu 4 x 2 x 16, gating 32': {
    kind: 'mol', userDim: 16, itemDim: 12, heads: ['click'],
    mol: { queryComponents: 4, itemComponents: 2, componentDim: 16, gatingWidth: 32, temperature: 0.1 },
  },
  'mol silu 3 x 5 x 7 (odd dc), gating 19, 3 heads': {
    kind: 'mol', userDim: 11, itemDim: 13, heads: ['engagement', 'click', 'conversion'], activation: 'silu',
    mol: { queryComponents: 3, itemComponents: 5, componentDim: 7, gatingWidth: 19, temperature: 0.5 },
    scenarios: { related: { engagement: 0.2, click: 1, conversion: 0.7 } }, defaultScenario: 'related',
  },
};

/**
 * The recall the bf16 scan must reach against the fp32 scan at the default rerankFactor (4): for
 * every user and k on random and clustered ads (measured: 1.000 on 18 models x 6 users x 3 k);
 * over all users and k together on near-duplicates, where ads score within bf16's error of each
 * other and a single user's top-1 can be lost (measured: 2 of 36 models lost one, 0.998 overall).
 */
const minRecall = 0.98;

/** 25 topics, each ad a centre plus noise of `spread` (0.3: topics; 0.02 and less: near-duplicates). */
const clustered = (n: number, dim: number, spread: number, seed: number) => clusteredVectors(n, dim, 25, seed, spread);
const spreads = { random: 0, clustered: 0.3, 'near-duplicate': 0.02 } as const;

interface Fixture {
  config: Config;
  tensors: Tensors;
  ads: Float32Array;
  ids: BigInt64Array;
  fp32: LearnedScorer;
  bf16: LearnedScorer;
}

async function fixture(config: Config, ads: Float32Array): Promise<Fixture> {
  const tensors = randomTensors(config);
  const dir = writeModel(config, tensors);
  const n = ads.length / config.itemDim;
  const ids = sequentialIds(n, 7_000_000_000);
  const fp32 = await LearnedScorer.load(dir);
  const bf16 = await LearnedScorer.load(dir, { precision: 'bf16' });
  for (const s of [fp32, bf16]) {
    await s.add(ids.subarray(0, 500), ads.subarray(0, 500 * config.itemDim)); // two adds: a partly filled tile
    await s.add(ids.subarray(500), ads.subarray(500 * config.itemDim));
  }
  return { config, tensors, ads, ids, fp32, bf16 };
}

/**
 * Every returned score is the fp32 scorer's score of that ad (bit for bit: the re-scoring is the
 * fp32 path) and the float64 reference's (within 1e-4 of the row's scale); rows are sorted, hold
 * only eligible ads, and are full. Returns the recall of each user's row against the fp32 scan's.
 */
async function check(f: Fixture, got: SearchResults, want: SearchResults, users: Float32Array, eligible: (i: number) => boolean, what: string): Promise<number[]> {
  const { config, ids } = f;
  const n = ids.length;
  const slotOf = new Map(Array.from(ids, (id, i) => [id, i]));
  const weights = Array.from(f.fp32.headWeights());
  const reference = referenceScores(config, f.tensors, users, f.ads, weights);
  const recalls: number[] = [];
  for (let u = 0; u < got.queries; u++) {
    const row = got.row(u);
    const user = users.subarray(u * config.userDim, (u + 1) * config.userDim);
    assert.is(row.ids.length, want.row(u).ids.length, `${what}: user ${u}: count`);
    const fp32Scores = await f.fp32.score(user, row.ids);
    const scale = Math.max(...Array.from(want.row(u).scores, Math.abs), 1e-6);
    row.ids.forEach((id, r) => {
      const slot = slotOf.get(id);
      assert.ok(slot !== undefined && eligible(slot), `${what}: user ${u} rank ${r}: ad ${id} is not eligible`);
      assert.is(row.scores[r], fp32Scores[r], `${what}: user ${u} rank ${r}: score is not the fp32 score`);
      assert.ok(Math.abs(row.scores[r]! - reference[u * n + slot!]!) <= 1e-4 * scale, `${what}: user ${u} rank ${r}: ${row.scores[r]} vs float64 ${reference[u * n + slot!]}`);
      if (r > 0) assert.ok(row.scores[r - 1]! >= row.scores[r]!, `${what}: user ${u}: not sorted at ${r}`);
    });
    const exact = new Set(want.row(u).ids);
    recalls.push(row.ids.length === 0 ? 1 : row.ids.filter((id) => exact.has(id)).length / row.ids.length);
  }
  return recalls;
}

let seed = 300;
for (const [name, config] of Object.entries(models)) {
  for (const data of ['random', 'clustered', 'near-duplicate'] as const) {
    precision(`${name}, ${data} ads: bf16 scan returns fp32 scores with recall >= ${minRecall} for k = 1, 10, 100`, async () => {
      const n = 3001 + (seed % 5);
      const ads = data === 'random' ? randomVectors(n, config.itemDim, seed++) : clustered(n, config.itemDim, spreads[data], seed++);
      const f = await fixture(config, ads);
      const users = randomVectors(6, config.userDim, seed++);
      const all = () => true;
      const perUser = data !== 'near-duplicate';
      assert.is(f.bf16.precision, 'bf16');
      assert.match(f.bf16.info().reducedSimd, /^avx(2|512)-bf16$/);
      let hits = 0, total = 0;
      for (const k of [1, 10, 100]) {
        const want = await f.fp32.search(users, k);
        const recalls = await check(f, await f.bf16.search(users, k), want, users, all, `k ${k}`);
        if (perUser) recalls.forEach((r, u) => assert.ok(r >= minRecall, `k ${k} user ${u}: recall ${r} < ${minRecall}`));
        recalls.forEach((r) => ((hits += r * k), (total += k)));
        // A wider window never loses: rerankFactor 16 (and the widest, 64) re-score more ads in fp32.
        const wide = await check(f, await f.bf16.search(users, k, { rerankFactor: 16 }), want, users, all, `k ${k} factor 16`);
        wide.forEach((r, u) => assert.ok(r >= recalls[u]! - 1e-9, `k ${k} user ${u}: factor 16 recall ${r} below factor 4's ${recalls[u]}`));
      }
      assert.ok(hits / total >= minRecall, `recall over every user and k: ${hits / total}`);
      // Eligibility: a mask and a list of ids, each honoured by the bf16 scan and equal in recall.
      const mask = new Uint8Array(n).map((_, i) => (i % 3 === 0 || i > n - 20 ? 1 : 0));
      const eligible = (i: number) => mask[i] === 1;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const byMask = await check(f, await f.bf16.search(users, 20, { eligible: mask }), await f.fp32.search(users, 20, { eligible: mask }), users, eligible, 'mask');
      assert.ok(perUser ? Math.min(...byMask) >= minRecall : mean(byMask) >= minRecall, `mask: recalls ${byMask}`);
      const listed = Array.from(f.ids).filter((_, i) => eligible(i));
      const byIds = await check(f, await f.bf16.search(users, 20, { eligible: listed }), await f.fp32.search(users, 20, { eligible: listed }), users, eligible, 'ids');
      assert.ok(perUser ? Math.min(...byIds) >= minRecall : mean(byIds) >= minRecall, `ids: recalls ${byIds}`);
      // k beyond the corpus: every ad, all in fp32.
      const everything = await check(f, await f.bf16.search(users.subarray(0, config.userDim), n + 3), await f.fp32.search(users.subarray(0, config.userDim), n + 3), users, all, 'k > n');
      assert.equal(everything, [1]);
      f.fp32.close();
      f.bf16.close();
    });
  }
}

precision('the window matters: rerankFactor 1 (the bf16 top k alone) loses recall that the default window keeps', async () => {
  // Near-duplicate ads: their fp32 scores differ by less than bf16's error, so the bf16 order of
  // the top k is partly wrong and only a window beyond k recovers it.
  const config = models['mlp relu [u, x, u*x] 48-24']!;
  const f = await fixture(config, clustered(4000, config.itemDim, 0.002, 41));
  const users = randomVectors(8, config.userDim, 42);
  const want = await f.fp32.search(users, 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const narrow = mean(await check(f, await f.bf16.search(users, 50, { rerankFactor: 1 }), want, users, () => true, 'factor 1'));
  const standard = mean(await check(f, await f.bf16.search(users, 50), want, users, () => true, 'factor 4'));
  assert.ok(narrow < standard, `factor 1 recall ${narrow} should be below the default's ${standard}`);
  assert.ok(narrow < minRecall, `factor 1 recall ${narrow} should miss the stated ${minRecall}`);
  assert.ok(standard >= minRecall, `default recall ${standard}`);
});

precision('dot scorers: bf16 and int8 answers equal the fp32 scan (a proven window)', async () => {
  const config: Config = { kind: 'dot', userDim: 20, itemDim: 12, heads: ['engagement', 'click'], dot: { projection: true }, scenarios: { home: { engagement: 1, click: 0.5 } }, defaultScenario: 'home' };
  for (const data of ['random', 'clustered'] as const) {
    const n = 2500;
    const ads = data === 'random' ? randomVectors(n, 12, 51) : clustered(n, 12, 0.001, 51);
    const f = await fixture(config, ads);
    const users = randomVectors(5, 20, 52);
    for (const p of ['bf16', 'int8'] as const) {
      const scorer = p === 'bf16' ? f.bf16 : await LearnedScorer.load(writeModel(config, f.tensors), { precision: 'int8' });
      if (p === 'int8') await scorer.add(f.ids, ads);
      assert.match(scorer.info().reducedSimd, p === 'bf16' ? /-bf16$/ : /-(vnni|int8)$/);
      for (const k of [1, 10, 100]) {
        const want = await f.fp32.search(users, k);
        const got = await scorer.search(users, k);
        const recalls = await check({ ...f, bf16: scorer }, got, want, users, () => true, `${data} ${p} k ${k}`);
        assert.equal(recalls, recalls.map(() => 1), `${data} ${p} k ${k}: recall`);
        assert.equal(Array.from(got.scores), Array.from(want.scores), `${data} ${p} k ${k}: scores rank by rank`);
      }
      scorer.close();
    }
    f.fp32.close();
  }
});

precision('an attached bf16 scorer follows the index: upserts, removals, filters and compaction', async () => {
  const config = models['mol relu 4 x 2 x 16, gating 32']!;
  const tensors = randomTensors(config);
  const dir = writeModel(config, tensors);
  const n = 2000;
  const ads = randomVectors(n, 12, 61);
  const ids = sequentialIds(n, 1);
  const attrs = Array.from({ length: n }, (_, i) => ({ category: i % 4 }));
  const indexes = [new AdIndex({ dim: 12 }), new AdIndex({ dim: 12 })];
  const [fp32, bf16] = [await LearnedScorer.load(dir), await LearnedScorer.load(dir, { precision: 'bf16' })];
  await indexes[0]!.upsert(ids.subarray(0, 1000), ads.subarray(0, 12000), attrs.slice(0, 1000));
  await indexes[1]!.upsert(ids.subarray(0, 1000), ads.subarray(0, 12000), attrs.slice(0, 1000));
  await fp32!.attach(indexes[0]!);
  await bf16!.attach(indexes[1]!);
  const users = randomVectors(4, 16, 62);
  const compare = async (what: string, eligibleOf?: (index: AdIndex) => Promise<unknown>) => {
    for (const k of [5, 40]) {
      const want = await fp32!.search(users, k, eligibleOf ? { eligible: (await eligibleOf(indexes[0]!)) as never } : {});
      const got = await bf16!.search(users, k, eligibleOf ? { eligible: (await eligibleOf(indexes[1]!)) as never } : {});
      for (let u = 0; u < 4; u++) {
        const row = got.row(u);
        const exact = new Set(want.row(u).ids);
        const recall = row.ids.filter((id) => exact.has(id)).length / Math.max(row.ids.length, 1);
        assert.ok(recall >= minRecall, `${what} k ${k} user ${u}: recall ${recall}`);
        assert.equal(Array.from(row.scores), Array.from(await fp32!.score(users.subarray(u * 16, u * 16 + 16), row.ids)), `${what}: fp32 scores`);
      }
    }
  };
  await compare('after attach');
  for (const index of indexes) {
    await index.upsert(ids.subarray(1000), ads.subarray(12000), attrs.slice(1000));
    await index.upsert(ids.subarray(0, 300), randomVectors(300, 12, 63)); // re-embedded: dead slots
    await index.remove(Array.from(ids.subarray(300, 700)));
  }
  await compare('after writes');
  await compare('filtered', (index) => index.filter({ categories: [1, 3] }));
  const filtered = await bf16!.search(users, 30, { eligible: await indexes[1]!.filter({ categories: [2] }) });
  for (const id of filtered.ids) if (id >= 0n) assert.is(Number(id - 1n) % 4, 2, `ad ${id} is outside the filter`);
  for (const index of indexes) await index.compact();
  await compare('after compaction');
  fp32!.close();
  bf16!.close();
});

precision('the AVX2 bf16 kernels (forced in a child process) give the same guarantees', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'helpers', 'scorer-bf16-child.ts')], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, CANGEN_SCORER_SIMD: 'avx2' },
  });
  assert.is(child.status, 0, child.stderr);
  const models = JSON.parse(child.stdout) as { kind: string; simd: string; reducedSimd: string; recalls: number[]; fp32Scores: boolean }[];
  assert.is(models.length, 2);
  for (const m of models) {
    assert.is(m.simd, 'avx2', m.kind);
    assert.is(m.reducedSimd, 'avx2-bf16', m.kind);
    assert.ok(m.fp32Scores, `${m.kind}: a returned score is not the fp32 score`);
    m.recalls.forEach((r, u) => assert.ok(r >= minRecall, `${m.kind} user ${u}: recall ${r}`));
  }
});

precision('an abort rejects a bf16 search with ERR_ABORTED', async () => {
  const config = models['mlp relu [u, x, u*x] 48-24']!;
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)), { precision: 'bf16' });
  await scorer.add(sequentialIds(200_000), randomVectors(200_000, 16, 91));
  const controller = new AbortController();
  const search = scorer.search(randomVectors(16, 16, 92), 10, { signal: controller.signal }); // ~10 GFLOP of bf16 scan
  controller.abort();
  await rejects(search, 'ERR_ABORTED', /./);
  scorer.close();
});

precision('info() reports the bytes each ad takes at each precision', async () => {
  const cases: [Config, string, number][] = [
    // 16 fp32 values; bf16 adds 8 pairs of the embedding.
    [models['mlp relu [u, x, u*x] 48-24']!, 'bf16', 16 * 4 + 8 * 4],
    // Precomputed first layer: 40 fp32 rows (37 padded to 8); its bf16 scan reads them as they are.
    [models['mlp silu + layer norm [u, x] (first layer precomputed), 2 heads']!, 'bf16', 40 * 4],
    // Keys 2 x 16 and the gating half 32; bf16 adds 2 x 8 pairs of the keys.
    [models['mol relu 4 x 2 x 16, gating 32']!, 'bf16', (32 + 32) * 4 + 16 * 4],
    // Odd dc: each of the 5 components' 7 rows pairs up into 4 words; gating 19 padded to 24.
    [models['mol silu 3 x 5 x 7 (odd dc), gating 19, 3 heads']!, 'bf16', (35 + 24) * 4 + 20 * 4],
    [{ kind: 'dot', userDim: 24, itemDim: 24, heads: ['s'] }, 'fp32', 96],
    [{ kind: 'dot', userDim: 24, itemDim: 24, heads: ['s'] }, 'bf16', 96 + 12 * 4],
    // int8: a word per 4 values, plus a scale and an offset per ad.
    [{ kind: 'dot', userDim: 24, itemDim: 24, heads: ['s'] }, 'int8', 96 + 6 * 4 + 8],
  ];
  for (const [config, p, bytes] of cases) {
    const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)), { precision: p as 'fp32' });
    assert.is(scorer.info().bytesPerAd, bytes, `${config.kind} ${p}`);
    assert.is(scorer.info().precision, p);
    scorer.close();
  }
});

precision('bad precision options give typed errors', async () => {
  const mlp = models['mlp relu [u, x, u*x] 48-24']!;
  const dir = writeModel(mlp, randomTensors(mlp));
  await rejects(LearnedScorer.load(dir, { precision: 'fp16' as never }), 'ERR_INVALID_ARGUMENT', /'fp32', 'bf16', 'int8' for options.precision/);
  await rejects(LearnedScorer.load(dir, { precision: 'int8' }), 'ERR_INVALID_ARGUMENT', /int8 is for kind 'dot'/);
  const fp32 = await LearnedScorer.load(dir);
  const bf16 = await LearnedScorer.load(dir, { precision: 'bf16' });
  for (const s of [fp32, bf16]) await s.add(sequentialIds(100), randomVectors(100, 16, 71));
  const users = randomVectors(2, 16, 72);
  await rejects(fp32.search(users, 5, { rerankFactor: 2 }), 'ERR_INVALID_ARGUMENT', /bf16 'mlp' or 'mol' scorer, and this scorer is fp32 'mlp'/);
  for (const bad of [0, 65, 1.5, '4']) {
    await rejects(bf16.search(users, 5, { rerankFactor: bad as number }), 'ERR_INVALID_ARGUMENT', /options.rerankFactor/);
  }
  await rejects(bf16.search(users, 5, { device: 'gpu' }), 'ERR_INVALID_ARGUMENT', /device 'cpu' for the full scan of a bf16 scorer/);
  await rejects(bf16.search(users, 5, { mode: 'unfused' }), 'ERR_INVALID_ARGUMENT', /fused mode for a bf16 scorer/);
  // Candidate lists are the fp32 re-ranking already: they run, in fp32, on any device setting.
  const candidates = await bf16.search(users, 5, { candidates: await fp32.search(users, 30) });
  assert.equal(Array.from(candidates.ids), Array.from((await fp32.search(users, 5)).ids));
  const dot: Config = { kind: 'dot', userDim: 8, itemDim: 8, heads: ['s'] };
  const int8 = await LearnedScorer.load(writeModel(dot, randomTensors(dot)), { precision: 'int8' });
  await int8.add(sequentialIds(50), randomVectors(50, 8, 73));
  await rejects(int8.search(randomVectors(1, 8, 74), 5, { rerankFactor: 4 }), 'ERR_INVALID_ARGUMENT', /this scorer is int8 'dot'/);
  for (const s of [fp32, bf16, int8]) s.close();
});

precision.run();
