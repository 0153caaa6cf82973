/**
 * The sequence generator in the engine: a trained user model (random weights, exported by the
 * trainer) encodes the user's history, from the request or from the user-history store, and
 * retrieves from the engine's corpus under the request's eligibility. Checked against a float64
 * brute force over the eligible ads with the query the encoder gives for the same history.
 * Skipped (with a line saying why) where PyTorch is not installed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, LearnedScorer, MemoryHistoryStore, SequenceEncoder } from '../lib';
import { missingTrainingDependencies, pythonForTraining } from '../lib/cli/train';
import { exportSequenceModels, ITEMS } from './helpers/sequence-model';

const python = pythonForTraining();
const missing = missingTrainingDependencies(python);
const generator = suite('the sequence generator retrieves with what the user just did');
const test = missing ? generator.skip : generator;
if (missing) console.log(`skipped: ${missing}`);

let work = '';
let encoder: SequenceEncoder;
let models: { dot: string; mol: string };
generator.before(async () => {
  if (missing) return;
  work = mkdtempSync(join(os.tmpdir(), 'cangen-sequence-generator-'));
  models = exportSequenceModels(work);
  encoder = await SequenceEncoder.load(models.dot);
});
generator.after(() => {
  encoder?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The float64 top-k ad ids for `query` among the eligible items, by dot product with the exported item embeddings. */
function bruteForce(query: Float32Array, eligible: (item: number) => boolean, k: number): bigint[] {
  const table = encoder.itemEmbeddings();
  const dim = encoder.dim;
  const scored: { id: bigint; score: number }[] = [];
  for (let item = 1; item <= ITEMS; item++) {
    const row = encoder.rows([String(item)])[0]!;
    if (!eligible(item)) continue;
    let s = 0;
    for (let j = 0; j < dim; j++) s += query[j]! * table[row * dim + j]!;
    scored.push({ id: BigInt(item), score: s });
  }
  return scored.sort((a, b) => b.score - a.score).slice(0, k).map((x) => x.id);
}

test('by user id (stored history) and by the request\'s own history, filtered, equal to brute force', async () => {
  const histories = await MemoryHistoryStore.open({ maxEvents: 50 });
  const engine = await CandidateEngine.open({
    dim: encoder.dim,
    sequence: { encoder, histories },
    scenarios: [{ name: 's', generators: ['sequence'], k: 8, overfetch: 1, deadlineMs: 10_000 }],
  });
  const dim = encoder.dim;
  const rows = encoder.rows(Array.from({ length: ITEMS }, (_, i) => String(i + 1)));
  await engine.upsertAds(Array.from({ length: ITEMS }, (_, i) => ({
    id: BigInt(i + 1),
    category: (i + 1) % 2 ? 'odd' : 'even',
    active: (i + 1) % 5 !== 0,
    embedding: encoder.itemEmbeddings().slice(rows[i]! * dim, (rows[i]! + 1) * dim),
  })));
  const seen = ['3', '17', '8', '21', '4'];
  await histories.append(seen.map((item, i) => ({ userId: 'u1', item, action: i % 2 ? 'view' : 'buy', time: 1000 + 60 * i })));

  const query = await encoder.encode({
    items: encoder.rows(seen), offsets: Uint32Array.of(0, seen.length),
    actions: encoder.actionRows(seen.map((_, i) => (i % 2 ? 'view' : 'buy'))), times: Float64Array.from(seen, (_, i) => 1000 + 60 * i),
  });
  const eligible = (item: number) => item % 2 === 1 && item % 5 !== 0;
  const expected = bruteForce(query, eligible, 8);
  const byId = await engine.retrieve({ userId: 'u1', scenario: 's', eligibility: { categories: ['odd'] } });
  assert.equal(byId.candidates.map((c) => c.adId), expected, 'by user id');
  assert.ok(byId.candidates.every((c) => c.source === 'sequence'));

  const own = await engine.retrieve({
    userId: 'someone', scenario: 's', eligibility: { categories: ['odd'] },
    features: { history: { items: seen, actions: seen.map((_, i) => (i % 2 ? 'view' : 'buy')), times: seen.map((_, i) => 1000 + 60 * i) } },
  });
  assert.equal(own.candidates.map((c) => c.adId), expected, 'by the request\'s history');

  // One more event: the session encodes only it, and the answer follows the new history.
  await histories.append([{ userId: 'u1', item: '30', action: 'view', time: 2000 }]);
  const longer = [...seen, '30'];
  const query2 = await encoder.encode({
    items: encoder.rows(longer), offsets: Uint32Array.of(0, longer.length),
    actions: encoder.actionRows([...seen.map((_, i) => (i % 2 ? 'view' : 'buy')), 'view']), times: Float64Array.from([...seen.map((_, i) => 1000 + 60 * i), 2000]),
  });
  const after = await engine.retrieve({ userId: 'u1', scenario: 's', eligibility: { categories: ['odd'] } });
  assert.equal(after.candidates.map((c) => c.adId), bruteForce(query2, eligible, 8), 'after one more event');

  // Nothing known about the user: the generator offers nothing (popularity covers cold users).
  const cold = await engine.retrieve({ userId: 'nobody', scenario: 's' });
  assert.is(cold.candidates.length, 0);
  const unknownItems = await engine.retrieve({ userId: 'x', scenario: 's', features: { history: { items: ['no-such-item'] } } });
  assert.is(unknownItems.candidates.length, 0);
  await engine.close();
  await histories.close();
});

test('a Mixture-of-Logits head: the exported scorer attached to the corpus ranks, filtered inside its scan', async () => {
  const mol = await SequenceEncoder.load(models.mol);
  const scorer = await LearnedScorer.load(join(models.mol, 'scorer'));
  const engine = await CandidateEngine.open({
    dim: mol.dim,
    sequence: { encoder: mol, scorer },
    scenarios: [{ name: 's', generators: ['sequence'], k: 6, overfetch: 1, deadlineMs: 10_000 }],
  });
  assert.is(scorer.attachedIndex, engine.corpus.behavioural);
  const dim = mol.dim;
  const ids = Array.from({ length: ITEMS }, (_, i) => String(i + 1));
  const rows = mol.rows(ids);
  await engine.upsertAds(ids.map((id, i) => ({
    id: BigInt(id), category: Number(id) % 3 ? 'a' : 'b', embedding: mol.itemEmbeddings().slice(rows[i]! * dim, (rows[i]! + 1) * dim),
  })));
  const seen = ['5', '9', '2'];
  const query = await mol.encode({ items: mol.rows(seen), offsets: Uint32Array.of(0, 3) });
  // The reference: the scorer's exact scores of every eligible ad (its unfused path), ranked.
  const eligibleIds = ids.filter((id) => Number(id) % 3 !== 0);
  const scores = await scorer.score(query, eligibleIds.map(BigInt));
  const expected = eligibleIds.map((id, i) => ({ id: BigInt(id), s: scores[i]! })).sort((a, b) => b.s - a.s).slice(0, 6).map((x) => x.id);
  const got = await engine.retrieve({ userId: 'u', scenario: 's', eligibility: { categories: ['a'] }, features: { history: { items: seen } } });
  assert.equal(got.candidates.map((c) => c.adId), expected);
  await engine.close();
  scorer.close();
  mol.close();
});

generator.run();
