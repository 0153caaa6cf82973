import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AdIndex, FaissIndex, FlatIndex, LearnedScorer, limits, ResourceLimitError, setLimits, TwoStageRetriever, type IndexKind,
} from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, writeModel } from './helpers/scorer-model';

// Every entry point sizes nq x k results against the process's result budget before allocating,
// in 64-bit arithmetic, and refuses what does not fit with a typed error; what fits still works.
const budget = suite('result memory budget');
const dim = 16;
const MiB = 1 << 20;

budget.after.each(() => setLimits({ resultBytes: 0 }));

async function assertOverBudget(call: () => Promise<unknown>, what: string, mentions = 'result budget'): Promise<void> {
  try {
    await call();
    assert.unreachable(`${what}: expected ResourceLimitError`);
  } catch (error) {
    assert.instance(error, ResourceLimitError, `${what}: ${String(error)}`);
    assert.is((error as ResourceLimitError).code, 'ERR_RESOURCE_LIMIT');
    assert.match((error as Error).message, mentions, what);
  }
}

budget('defaults to 1 GiB; setLimits changes it, 0 restores it, bad values are refused', () => {
  assert.is(limits().resultBytes, 1024 * MiB);
  setLimits({ resultBytes: 5 * MiB });
  assert.is(limits().resultBytes, 5 * MiB);
  setLimits({ resultBytes: 0 });
  assert.is(limits().resultBytes, 1024 * MiB);
  assert.throws(() => setLimits({ resultBytes: -5 }), /resultBytes/);
  assert.throws(() => setLimits({ resultByte: 5 } as never), /did you mean 'resultBytes'/);
});

budget('FlatIndex and FaissIndex: nq x k over the budget is refused, within it answered', async () => {
  const ads = randomVectors(2000, dim, 1);
  const flat = new FlatIndex({ dim });
  const faiss = new FaissIndex({ dim, factory: 'Flat' });
  for (const index of [flat, faiss]) await index.add(sequentialIds(2000), ads);
  const queries = randomVectors(200, dim, 2);
  setLimits({ resultBytes: MiB });
  for (const [name, index] of [['FlatIndex', flat], ['FaissIndex', faiss]] as const) {
    // 200 x 1000 results take more than 1 MiB through the call; 200 x 10 do not.
    await assertOverBudget(() => index.search(queries, 1000), name);
    const ok = await index.search(queries, 10);
    assert.is(ok.counts[199], 10, `${name} within budget`);
  }
  // The default budget refuses a request that would otherwise take gigabytes (2^24 x 200 results).
  setLimits({ resultBytes: 0 });
  await assertOverBudget(() => flat.search(queries, 1 << 24), 'FlatIndex k = 2^24');
});

for (const kind of ['flat', 'hnsw', 'ivf-flat', 'ivf-pq'] as IndexKind[]) {
  budget(`AdIndex '${kind}': nq x k over the budget is refused before allocating`, async () => {
    const n = 5000; // above the exact fallback, so the approximate kinds search their structure
    const index = new AdIndex({ dim, kind, nlist: 16, hnswM: 8, pqBytes: 4 });
    const ads = randomVectors(n, dim, 3);
    if (kind.startsWith('ivf')) await index.train(ads);
    await index.upsert(sequentialIds(n), ads);
    const queries = randomVectors(100, dim, 4);
    setLimits({ resultBytes: MiB });
    await assertOverBudget(() => index.search(queries, 2000), `AdIndex ${kind}`);
    assert.is((await index.search(queries, 5)).counts[99], 5);
  });
}

budget("AdIndex 'ivf-pq': k x rerank is counted in 64 bits (2^21 x 1024 overflowed an int)", async () => {
  const n = 5000;
  const index = new AdIndex({ dim, kind: 'ivf-pq', nlist: 16, pqBytes: 4, rerank: 4 });
  const ads = randomVectors(n, dim, 5);
  await index.train(ads);
  await index.upsert(sequentialIds(n), ads);
  const query = randomVectors(1, dim, 6);
  // Within the default budget for the results (2^21 rows), far over it for the candidates.
  await assertOverBudget(() => index.search(query, 1 << 21, { rerank: 1024 }), 'candidates', 're-ranking candidates');
  // With the budget lifted, the product is still refused rather than wrapped to a negative size.
  setLimits({ resultBytes: Number.MAX_SAFE_INTEGER });
  await assertOverBudget(() => index.search(query, 1 << 21, { rerank: 1024 }), 'k x rerank', '2^31');
  setLimits({ resultBytes: 0 });
  assert.is((await index.search(query, 10, { rerank: 8 })).counts[0], 10);
});

budget('LearnedScorer (search, unfused search, score) and TwoStageRetriever', async () => {
  const config = { format: 'cangen-scorer', version: 1, kind: 'mlp', userDim: dim, itemDim: dim, heads: ['click'], mlp: { hidden: [8] } };
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  const n = 3000;
  const ads = randomVectors(n, dim, 7);
  await scorer.add(sequentialIds(n), ads);
  const users = randomVectors(100, dim, 8);
  setLimits({ resultBytes: MiB });
  await assertOverBudget(() => scorer.search(users, 1000), 'scorer search');
  // Unfused: one score per (user, ad) = 100 x 3000 floats is over 1 MiB even for k = 1.
  await assertOverBudget(() => scorer.search(users, 1, { mode: 'unfused' }), 'unfused', 'unfused scores');
  await assertOverBudget(() => scorer.score(users), 'score()', 'scores');
  assert.is((await scorer.search(users, 5)).counts[99], 5);

  const firstStage = new FlatIndex({ dim });
  await firstStage.add(sequentialIds(n), ads);
  const twoStage = new TwoStageRetriever({ firstStage, scorer, candidates: 2000 });
  await assertOverBudget(() => twoStage.search(users, 10), 'two-stage first stage');
  const small = new TwoStageRetriever({ firstStage, scorer, candidates: 50 });
  assert.is((await small.search(users, 10)).results.counts[99], 10);
});

budget.run();
