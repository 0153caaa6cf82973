import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FlatIndex, LearnedScorer, TwoStageRetriever } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';

const twoStage = suite('two-stage retrieval');

const config: Config = {
  kind: 'mol', userDim: 16, itemDim: 16, heads: ['click', 'conversion'],
  mol: { queryComponents: 4, itemComponents: 4, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
  scenarios: { home: { click: 1, conversion: 0.5 } }, defaultScenario: 'home',
};

async function setup(n: number) {
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  const ads = randomVectors(n, 16, 11);
  const ids = sequentialIds(n, 77);
  await scorer.add(ids, ads);
  const index = new FlatIndex({ dim: 16 });
  await index.add(ids, ads);
  return { scorer, index, ids };
}

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

twoStage.run();
