import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, LearnedScorer, TwoStageRetriever } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { referenceScores, randomTensors, writeModel, type Config } from './helpers/scorer-model';

const filters = suite('learned scorers take the AdIndex eligibility filters');

const config: Config = {
  kind: 'mlp', userDim: 12, itemDim: 12, heads: ['click'], mlp: { hidden: [16], activation: 'relu', features: ['user', 'item', 'cross'] },
};

filters('a compiled filter restricts the scan and the two-stage first stage to eligible ads', async () => {
  const n = 1500;
  const tensors = randomTensors(config);
  const scorer = await LearnedScorer.load(writeModel(config, tensors));
  const ads = randomVectors(n, 12, 3);
  const ids = sequentialIds(n, 10);
  await scorer.add(ids, ads);
  const index = new AdIndex({ dim: 12 });
  await index.upsert(ids, ads, Array.from({ length: n }, (_, i) => ({ category: i % 6, active: i % 7 !== 0 })));
  const filter = await index.filter({ categories: [2], active: true });
  const eligible = (i: number) => i % 6 === 2 && i % 7 !== 0;

  const users = randomVectors(3, 12, 4);
  const reference = referenceScores(config, tensors, users, ads, [1]);
  const got = await scorer.search(users, 25, { eligible: filter });
  for (let u = 0; u < 3; u++) {
    const expected = Array.from({ length: n }, (_, i) => i)
      .filter(eligible)
      .sort((a, b) => reference[u * n + b]! - reference[u * n + a]!)
      .slice(0, 25);
    const row = got.row(u);
    assert.is(row.ids.length, 25);
    row.ids.forEach((id, r) => {
      const i = Number(id - 10n);
      assert.ok(eligible(i), `ineligible ad ${id}`);
      assert.ok(Math.abs(row.scores[r]! - reference[u * n + expected[r]!]!) <= 1e-4 * Math.max(1, Math.abs(row.scores[r]!)), `rank ${r}`);
    });
  }

  // Two-stage with the AdIndex as first stage: every candidate handed over is eligible, so K' =
  // the eligible count finds the exact filtered top-k.
  const retriever = new TwoStageRetriever({ firstStage: index, scorer, candidates: filter.count });
  const out = await retriever.search(users, 25, { eligible: filter, measureRecall: true });
  assert.is(out.recall, 1);
  assert.equal(Array.from(out.results.ids), Array.from(got.ids));
  assert.equal(Array.from(await index.eligibleIds(filter)).length, filter.count);
});

filters.run();
