/**
 * The unified model end to end at a small size: cangen's multi-task trainer fits one HSTU with
 * engagement, click and conversion heads per scenario to the simulator's logged events, the
 * simulation serves it with the request's scenario head, and the model comparison runs it beside
 * a per-label model and the untrained generators. Skipped (with a line saying why) without
 * PyTorch or with a trainer that has no multi-task training.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { missingTrainingDependencies, pythonForTraining } from '../lib/cli/train';
import { seededRandom } from '../lib/orchestration/random';
import { compareModels, eventLog, formatComparison, formatReport, historiesOf, Marketplace, simulate } from '../lib/simulator';
import { closeServedModel, loadServedModel } from '../lib/simulator/event-models';
import { SimulatorSequenceGenerator } from '../lib/simulator/sequence-generator';
import { CandidateEngine, LearnedScorer } from '../lib';

const missing = missingTrainingDependencies(pythonForTraining());
const unified = suite('the simulator trains and serves the unified model');
const test = missing ? unified.skip : unified;
if (missing) console.log(`skipped: ${missing}`);

const world = { ads: 1500, users: 300, seed: 5 };
const scenarios = ['home', 'related', 'search'];
let work = '';
unified.before(() => {
  if (!missing) work = mkdtempSync(join(os.tmpdir(), 'cangen-simulator-unified-'));
});
unified.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a small simulation serves the unified model by default: heads per label and scenario, its ads shown in every scenario', async () => {
  const status: string[] = [];
  const report = await simulate({ ...world, requests: 400, window: 100, modelDir: join(work, 'models'), onStatus: (line) => status.push(line) });
  assert.is(report.sequence.model, 'unified', status.join('\n'));
  assert.is(report.sequence.status, 'trained', status.join('\n'));
  for (const label of ['engagement', 'click', 'conversion']) assert.ok(report.sequence.labels[label]! > 0, `${label} events in the log`);
  for (const s of scenarios) {
    assert.ok(report.sequence.heads!.includes(`click@${s}`), `a click head for ${s}: ${report.sequence.heads}`);
    assert.ok(report.sequence.heads!.includes(`conversion@${s}`), `a conversion head for ${s}`);
  }
  assert.ok(report.sequence.heads!.includes('engagement@related'));
  assert.equal(report.generators, ['two-tower', 'scorer', 'content', 'popularity', 'sequence']);
  for (const arm of Object.values(report.arms)) {
    assert.equal(Object.keys(arm.byScenario), scenarios);
    assert.ok(arm.byGenerator.sequence!.shownPer1000 > 0, 'the unified model\'s candidates are shown');
  }
  assert.match(formatReport(report), /sequence generator: unified HSTU trained on [0-9,]+ logged events \([0-9,]+ engagement, [0-9,]+ click, [0-9,]+ conversion\) \([0-9,]+ ads known, \d+ heads/);
});

test('the served unified model answers each scenario with its own heads, and its folded heads score as the exported scorer', async () => {
  const market = new Marketplace(world);
  const events = eventLog(market, 30, seededRandom(world.seed + 2)); // the log the simulation above trained on
  const model = await loadServedModel(join(work, 'models', 'unified', 'model'), true);
  const adIds = Array.from({ length: market.nAds }, (_, i) => BigInt(i + 1));
  const generator = new SimulatorSequenceGenerator(model.encoder, adIds, model.heads);
  const engine = new CandidateEngine({ dim: market.dim, scenarios: scenarios.map((name) => ({ name, generators: ['sequence'], k: 20, deadlineMs: 10_000 })), generators: [generator] });
  try {
    await engine.upsertAds(adIds.map((_, i) => market.adUpsert(i)));
    await generator.attach(engine);
    const histories = historiesOf(events, market.nUsers, true);
    let differ = 0;
    for (const user of [0, 1, 2, 3, 4]) {
      const history = { items: histories[user]!.items.slice(-20), actions: histories[user]!.actions.slice(-20) };
      const answers = new Map<string, bigint[]>();
      for (const scenario of scenarios) {
        const result = await engine.retrieve({ userId: `u${user}`, scenario, features: { history } });
        assert.is(result.candidates.length, 20, `user ${user} in ${scenario}`);
        for (const c of result.candidates) assert.ok(engine.store.eligible(c.adId, undefined, undefined), `ad ${c.adId} eligible`);
        answers.set(scenario, result.candidates.map((c) => c.adId));
      }
      if (answers.get('home')!.join() !== answers.get('search')!.join()) differ++;
    }
    assert.ok(differ >= 3, `home and search differ for ${differ} of 5 users`);

    // The trainer's own export: the folded query scores every ad as its LearnedScorer blends the heads.
    const scorer = await LearnedScorer.load(join(work, 'models', 'unified', 'model', 'scorer'));
    try {
      const d = model.encoder.dim;
      const table = model.encoder.itemEmbeddings();
      const ids = BigInt64Array.from({ length: 200 }, (_, i) => BigInt(i + 1));
      await scorer.add(ids, table.slice(d, 201 * d)); // model rows 1..200
      const h = histories[0]!;
      const rows = model.encoder.rows(h.items.slice(-20));
      const u = await model.encoder.encode({ items: rows, offsets: Uint32Array.of(0, rows.length), actions: model.encoder.actionRows(h.actions.slice(-20)) });
      for (const scenario of scenarios) {
        const q = model.heads!.query(u, scenario);
        const native = await scorer.score(u, ids, { scenario });
        for (let i = 0; i < 200; i++) {
          let folded = 0;
          for (let j = 0; j < d; j++) folded += q[j]! * table[(i + 1) * d + j]!;
          assert.ok(Math.abs(folded - native[i]!) < 1e-4 * (1 + Math.abs(native[i]!)), `${scenario} row ${i + 1}: folded ${folded}, scorer ${native[i]}`);
        }
      }
    } finally {
      scorer.close();
    }
  } finally {
    await engine.close();
    generator.close();
    closeServedModel(model);
  }
});

test('the model comparison: untrained generators, a per-label model and the unified model (reused), per scenario', async () => {
  const status: string[] = [];
  const comparison = await compareModels({ ...world, requests: 300, window: 100, models: ['click', 'unified'], modelDir: join(work, 'models'), onStatus: (line) => status.push(line) });
  assert.is(comparison.models.unified!.status, 'reused', status.join('\n'));
  assert.is(comparison.models.click!.status, 'trained');
  assert.equal([...comparison.models.click!.heads!].sort(), scenarios.map((s) => `click@${s}`), 'a click head per scenario, nothing else');
  assert.equal(Object.keys(comparison.arms), ['untrained', 'click', 'unified']);
  for (const arm of Object.values(comparison.arms)) {
    assert.is(arm.allocator, 'learned');
    assert.equal(Object.keys(arm.byScenario), scenarios);
    assert.is(Object.values(arm.byScenario).reduce((n, s) => n + s.requests, 0), 300);
    assert.is(arm.name === 'untrained', arm.byGenerator.sequence === undefined, `${arm.name}: a sequence generator only with a model`);
  }
  // Every arm saw the same requests: the same scenarios, request for request.
  for (const s of scenarios) assert.is(comparison.arms.unified!.byScenario[s]!.requests, comparison.arms.untrained!.byScenario[s]!.requests);
  const table = formatComparison(comparison);
  for (const s of [...scenarios, 'all']) for (const arm of ['untrained', 'click', 'unified']) assert.match(table, new RegExp(`\\n${s} ${arm}\\s+[0-9.]+\\s+[0-9.]+\\s+[0-9.]+`));
});

unified.run();
