/**
 * The service with a trained user model (sequenceModel): events posted to /v1/events drive a
 * retrieve by user id alone, over real HTTP on loopback, and the answer is the float64 brute force
 * over the eligible ads with the query the encoder gives for the stored history. Skipped (with a
 * line saying why) where PyTorch is not installed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SequenceEncoder } from '../lib';
import { missingTrainingDependencies, pythonForTraining } from '../lib/cli/train';
import { parseSafetensors } from '../lib/scorer/safetensors';
import { buildEngine, createService, loadConfig } from '../lib/service';
import { httpCall } from './helpers/http';
import { exportSequenceModels, ITEMS } from './helpers/sequence-model';

const missing = missingTrainingDependencies(pythonForTraining());
const service = suite('the service retrieves by user id with a sequence model');
const test = missing ? service.skip : service;
if (missing) console.log(`skipped: ${missing}`);

const token = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${token}` };

let work = '';
let models: ReturnType<typeof exportSequenceModels>;
service.before(() => {
  if (missing) return;
  work = mkdtempSync(join(os.tmpdir(), 'cangen-service-sequence-'));
  models = exportSequenceModels(work);
});
service.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The service over real HTTP with `modelDir` as its sequence model and these scenarios (sequence
 * generator only, top k), its ads the model's items (ids 1..ITEMS, `category(id)`), already put.
 */
async function serveModel(modelDir: string, scenarios: string[], k: number, category: (id: string) => string) {
  const encoder = await SequenceEncoder.load(modelDir);
  const dim = encoder.dim;
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0, corpus: 'empty', dim, drainDelayMs: 0, saveIntervalMs: 0, token, sequenceModel: modelDir,
      scenarios: scenarios.map((name) => ({ name, generators: ['sequence'], k, overfetch: 1, deadlineMs: 5000 })),
    },
  });
  const { engine, histories } = await buildEngine(config);
  const running = createService(engine, config, undefined, histories);
  const base = await running.start();
  const ids = Array.from({ length: ITEMS }, (_, i) => String(i + 1));
  const rows = encoder.rows(ids);
  const table = encoder.itemEmbeddings();
  const ads = ids.map((id, i) => ({ id, category: category(id), embedding: Array.from(table.subarray(rows[i]! * dim, (rows[i]! + 1) * dim)) }));
  assert.is((await httpCall(base, 'PUT', '/v1/ads', { ads }, auth)).status, 200);
  const stop = async () => {
    await running.stop();
    encoder.close();
  };
  return { encoder, dim, base, ids, rows, table, stop };
}

test('events in, retrieve by user id out; bad histories answer 400; a model of another dim is refused', async () => {
  const { encoder, dim, base, ids, rows, table, stop } = await serveModel(models.dot, ['s'], 5, (id) => (Number(id) % 4 === 0 ? 'x' : 'y'));
  try {
    const seen = ['12', '3', '25', '7'];
    const events = seen.map((item, i) => ({ userId: 'u9', item, action: 'view', time: 5000 + i }));
    assert.is((await httpCall(base, 'POST', '/v1/events', { events }, auth)).status, 200);

    const query = await encoder.encode({
      items: encoder.rows(seen), offsets: Uint32Array.of(0, 4), actions: encoder.actionRows(seen.map(() => 'view')), times: Float64Array.of(5000, 5001, 5002, 5003),
    });
    const expected = ids
      .filter((id) => Number(id) % 4 !== 0)
      .map((id) => {
        const row = rows[ids.indexOf(id)]!;
        let s = 0;
        for (let j = 0; j < dim; j++) s += query[j]! * table[row * dim + j]!;
        return { id, s };
      })
      .sort((a, b) => b.s - a.s)
      .slice(0, 5)
      .map((x) => x.id);
    const answer = await httpCall(base, 'POST', '/v1/retrieve', { userId: 'u9', scenario: 's', eligibility: { categories: ['y'] } });
    assert.is(answer.status, 200, JSON.stringify(answer.json));
    const candidates = (answer.json as { candidates: { adId: string; source: string }[] }).candidates;
    assert.equal(candidates.map((c) => String(c.adId)), expected);
    assert.ok(candidates.every((c) => c.source === 'sequence'));

    const bad = await httpCall(base, 'POST', '/v1/retrieve', { userId: 'u9', scenario: 's', features: { history: { items: ['1', '2'], times: [1] } } });
    assert.is(bad.status, 400);
    assert.match(JSON.stringify(bad.text), /features\.history\.times to have one entry per item \(2\)/);
  } finally {
    await stop();
  }

  const wrongDim = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim: dim + 1, sequenceModel: models.dot } });
  await buildEngine(wrongDim).then(
    () => assert.unreachable('built'),
    (error) => assert.match((error as Error).message, new RegExp(`service's dim ${dim + 1} for sequenceModel`)),
  );
});

test('scorerPrecision bf16: the Mixture-of-Logits scorer answers as in fp32 (its window covers every item here)', async () => {
  const answers: string[][] = [];
  for (const scorerPrecision of ['fp32', 'bf16'] as const) {
    const encoder = await SequenceEncoder.load(models.mol);
    const config = loadConfig({
      env: {},
      overrides: {
        port: 0, corpus: 'empty', dim: encoder.dim, drainDelayMs: 0, saveIntervalMs: 0, token, sequenceModel: models.mol, scorerPrecision,
        scenarios: [{ name: 's', generators: ['sequence'], k: 5, overfetch: 1, deadlineMs: 5000 }],
      },
    });
    const lines: string[] = [];
    const { engine, histories } = await buildEngine(config, { log: (line) => lines.push(line) });
    assert.ok(lines.includes(`sequence model: Mixture-of-Logits scorer, ${scorerPrecision} scan`), lines.join('\n'));
    const running = createService(engine, config, undefined, histories);
    try {
      const base = await running.start();
      const ids = Array.from({ length: ITEMS }, (_, i) => String(i + 1));
      const table = encoder.itemEmbeddings();
      const rows = encoder.rows(ids);
      const ads = ids.map((id, i) => ({ id, category: 'c', embedding: Array.from(table.subarray(rows[i]! * encoder.dim, (rows[i]! + 1) * encoder.dim)) }));
      assert.is((await httpCall(base, 'PUT', '/v1/ads', { ads }, auth)).status, 200);
      const events = ['12', '3', '25', '7'].map((item, i) => ({ userId: 'u4', item, action: 'view', time: 9000 + i }));
      assert.is((await httpCall(base, 'POST', '/v1/events', { events }, auth)).status, 200);
      const answer = await httpCall(base, 'POST', '/v1/retrieve', { userId: 'u4', scenario: 's' });
      assert.is(answer.status, 200, JSON.stringify(answer.json));
      answers.push((answer.json as { candidates: { adId: string }[] }).candidates.map((c) => String(c.adId)));
    } finally {
      await running.stop();
      encoder.close();
    }
  }
  assert.is(answers[0]!.length, 5);
  assert.equal(answers[1], answers[0]);
});

test("a multi-task model's heads are blended by the request's scenario; a scenario it does not know gets the mean blend", async () => {
  const { encoder, dim, base, ids, rows, table, stop } = await serveModel(models.multi, ['home', 'search', 'elsewhere'], 6, () => 'y');
  try {
    const seen = ['4', '18', '31'];
    const actions = ['view', 'buy', 'view'];
    const events = seen.map((item, i) => ({ userId: 'u3', item, action: actions[i], time: 100 + i }));
    assert.is((await httpCall(base, 'POST', '/v1/events', { events }, auth)).status, 200);
    const state = await encoder.encode({ items: encoder.rows(seen), offsets: Uint32Array.of(0, 3), actions: encoder.actionRows(actions), times: Float64Array.of(100, 101, 102) });

    // The reference reads the export's files itself: dot.proj (heads x dim x dim) and the scenarios' weights.
    const scorerDir = join(models.multi, 'scorer');
    const proj = parseSafetensors(readFileSync(join(scorerDir, 'model.safetensors')), 'proj').get('dot.proj')!.data;
    const scorerConfig = JSON.parse(readFileSync(join(scorerDir, 'config.json'), 'utf8')) as { heads: string[]; scenarios: Record<string, Record<string, number>> };
    const blend = (weights: Record<string, number>) => scorerConfig.heads.map((h) => weights[h] ?? 0);
    const topFor = (w: number[]) => {
      const q = new Float64Array(dim);
      w.forEach((wh, h) => {
        for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) q[i]! += wh * proj[(h * dim + i) * dim + j]! * state[j]!;
      });
      return ids
        .map((id, i) => ({ id, s: q.reduce((acc, qi, j) => acc + qi * table[rows[i]! * dim + j]!, 0) }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 6)
        .map((x) => x.id);
    };
    const home = blend(scorerConfig.scenarios.home!);
    const search = blend(scorerConfig.scenarios.search!);
    const expected: Record<string, string[]> = { home: topFor(home), search: topFor(search), elsewhere: topFor(home.map((w, h) => (w + search[h]!) / 2)) };
    assert.not.equal(expected.home, expected.search, 'the two blends should rank differently for this check to mean anything');
    for (const name of ['home', 'search', 'elsewhere']) {
      const answer = await httpCall(base, 'POST', '/v1/retrieve', { userId: 'u3', scenario: name });
      assert.is(answer.status, 200, JSON.stringify(answer.json));
      const got = (answer.json as { candidates: { adId: string }[] }).candidates.map((c) => String(c.adId));
      assert.equal(got, expected[name], name);
    }
  } finally {
    await stop();
  }
});

service.run();
