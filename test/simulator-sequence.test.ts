/**
 * The simulator's own sequence model: an HSTU trained by cangen's trainer on the simulated users'
 * browsing joins the generators, and it learned something: on the next click of every user (the
 * world run on after the log, never seen in training), its hit rate through SequenceEncoder beats
 * a popularity ranking counted here from the same log. Skipped (with a line saying why) where
 * PyTorch is not installed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, InternalError, SequenceEncoder } from '../lib';
import { missingTrainingDependencies, pythonForTraining } from '../lib/cli/train';
import { seededRandom } from '../lib/orchestration/random';
import { browsingLog, eventLog, formatReport, Marketplace, quotasSvg, simulate, simulatorSequenceModel } from '../lib/simulator';
import { engagementHistories } from '../lib/simulator/event-log';
import { SimulatorSequenceGenerator } from '../lib/simulator/sequence-generator';

const missing = missingTrainingDependencies(pythonForTraining());
const sequence = suite('the simulator trains its own sequence model');
const test = missing ? sequence.skip : sequence;
if (missing) console.log(`skipped: ${missing}`);

const world = { ads: 1500, users: 300, seed: 5 };
let work = '';
sequence.before(() => {
  if (!missing) work = mkdtempSync(join(os.tmpdir(), 'cangen-simulator-sequence-'));
});
sequence.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a small simulation with the trained sequence generator, end to end', async () => {
  const status: string[] = [];
  const report = await simulate({ ...world, requests: 400, window: 100, sequenceModel: 'browsing', modelDir: join(work, 'model'), onStatus: (line) => status.push(line) });
  assert.is(report.sequence.status, 'trained', status.join('\n'));
  assert.ok(status.some((line) => /^ {2}epoch \d+: loss/.test(line)), `the trainer's epochs are reported: ${status.join('\n')}`);
  assert.ok(report.sequence.items! > 500 && report.sequence.items! <= world.ads, `ads the model knows: ${report.sequence.items}`);
  assert.equal(report.generators, ['two-tower', 'scorer', 'content', 'popularity', 'sequence']);
  for (const [g, share] of Object.entries(report.arms.static.finalShares.home!)) assert.ok(Math.abs(share - 0.2) < 1e-9, `static share of ${g}: ${share}`);
  for (const arm of Object.values(report.arms)) {
    const seq = arm.byGenerator.sequence!;
    assert.ok(seq.shownPer1000 > 0, 'the sequence generator\'s candidates are shown');
    assert.ok(seq.clicksPer100Shown > 0, 'and clicked');
    const shown = Object.values(arm.byGenerator).reduce((n, g) => n + g.shownPer1000, 0);
    assert.ok(Math.abs(shown - arm.shownPer1000) < 1e-6 && arm.shownPer1000 > 3000 && arm.shownPer1000 <= 4000, `shown per 1,000 requests: ${shown} of ${arm.shownPer1000}`);
  }
  assert.is((quotasSvg(report).match(/<polyline/g) ?? []).length, 3 * 5, 'a line per scenario and generator');
  const table = formatReport(report);
  assert.match(table, /sequence generator: browsing HSTU trained on [0-9,]+ clicks/);
  assert.match(table, /\nsequence\s+20% \/ \d+%\s+\d+ \/ \d+\s+[0-9.]+ \/ [0-9.]+/);
});

test('on held-out next clicks the trained model beats popularity (and the cached model is reused)', async () => {
  // The same world and log as the simulation above: its model directory is reused, not retrained.
  const market = new Marketplace(world);
  const log = engagementHistories(eventLog(market, 30, seededRandom(world.seed + 2)), market.nUsers);
  const model = await simulatorSequenceModel(market, log, { dir: join(work, 'model', 'browsing'), seed: world.seed });
  assert.is(model.status, 'reused');
  if (model.status === 'skipped') return;
  const encoder = await SequenceEncoder.load(model.modelDir);
  try {
    // The world runs on: each user's next click, never in the training log.
    const random = seededRandom(99);
    const next = log.map((_, u) => {
      for (let page = 0; page < 20; page++) {
        const clicked = market.browse(u, random);
        if (clicked.length) return clicked[0]!;
      }
      return -1;
    });
    // Popularity baseline, counted here: the 10 most clicked ads of the log.
    const counts = new Map<number, number>();
    for (const rows of log) for (const r of rows) counts.set(r, (counts.get(r) ?? 0) + 1);
    const popular = new Set([...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 10).map(([r]) => r));

    // The model: each user's last maxLen clicks through the native encoder, every known ad ranked by dot product (float64).
    const users = log.map((rows, u) => u).filter((u) => next[u]! >= 0 && log[u]!.length > 0);
    const windows = users.map((u) => encoder.rows(log[u]!.slice(-encoder.maxLen).map((r) => String(r + 1))));
    const offsets = Uint32Array.from([0, ...windows.map((w, i) => windows.slice(0, i + 1).reduce((n, x) => n + x.length, 0))]);
    const queries = await encoder.encode({ items: Int32Array.from(windows.flatMap((w) => Array.from(w))), offsets });
    const table = encoder.itemEmbeddings();
    const d = encoder.dim;
    const known = Array.from({ length: market.nAds }, (_, r) => r).filter((r) => encoder.rows([String(r + 1)])[0]! > 0);
    const knownRows = encoder.rows(known.map((r) => String(r + 1)));
    // Printed, not asserted: the 10 most clicked ads of the category of the user's last click (knows the world's categories).
    const popularIn = market.categories.map((_, c) => new Set([...counts].filter(([r]) => market.adCategory[r] === c).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 10).map(([r]) => r)));
    let modelHits = 0;
    let popularHits = 0;
    let categoryHits = 0;
    users.forEach((u, i) => {
      const scores = known.map((r, j) => {
        let s = 0;
        for (let k = 0; k < d; k++) s += queries[i * d + k]! * table[knownRows[j]! * d + k]!;
        return { r, s };
      });
      scores.sort((a, b) => b.s - a.s);
      if (scores.slice(0, 10).some((x) => x.r === next[u])) modelHits++;
      if (popular.has(next[u]!)) popularHits++;
      if (popularIn[market.adCategory[log[u]!.at(-1)!]!]!.has(next[u]!)) categoryHits++;
    });
    const modelRate = modelHits / users.length;
    const popularRate = popularHits / users.length;
    console.log(`  held-out next click, ${users.length} users, ${known.length} ads: HR@10 model ${modelRate.toFixed(3)}, popularity ${popularRate.toFixed(3)}, popularity in the last click's category ${(categoryHits / users.length).toFixed(3)}, random ${(10 / known.length).toFixed(3)}`);
    assert.ok(modelRate > 1.5 * popularRate && modelRate > 3 * (10 / known.length), `HR@10 model ${modelRate} vs popularity ${popularRate}`);
  } finally {
    encoder.close();
  }
});

test('the model directory is reused only for the same log; a log the trainer refuses is a typed error with its message', async () => {
  const tiny = new Marketplace({ ads: 300, users: 40, seed: 8 });
  const log = browsingLog(tiny, 8, seededRandom(1));
  const dir = join(work, 'tiny');
  assert.is((await simulatorSequenceModel(tiny, log, { dir, seed: 1 })).status, 'trained');
  assert.is((await simulatorSequenceModel(tiny, log, { dir, seed: 1 })).status, 'reused');
  const longer = log.map((rows, u) => (u === 0 ? [...rows, 5] : rows));
  assert.is((await simulatorSequenceModel(tiny, longer, { dir, seed: 1 })).status, 'trained', 'one more click: trained again');
  try {
    await simulatorSequenceModel(tiny, log.map(() => []), { dir: join(work, 'empty'), seed: 1 });
    assert.unreachable('an empty log trained');
  } catch (error) {
    assert.instance(error, InternalError);
    assert.match((error as Error).message, /The trainer failed on the simulator's log \(exit 2\): .*ERR_DATA_FORMAT: .*no events/);
  }
});

test('campaigns spent after the index was filled: the pipeline still shows only eligible ads (the answers are not trusted as filtered)', async () => {
  const market = new Marketplace(world);
  const encoder = await SequenceEncoder.load(join(work, 'model', 'browsing', 'model'));
  const generator = new SimulatorSequenceGenerator(encoder, Array.from({ length: market.nAds }, (_, i) => BigInt(i + 1)));
  const engine = new CandidateEngine({ dim: market.dim, scenarios: [{ name: 's', generators: ['sequence'], k: 30, deadlineMs: 10_000 }], generators: [generator] });
  try {
    await engine.upsertAds(Array.from({ length: market.nAds }, (_, i) => market.adUpsert(i)));
    await generator.attach(engine);
    const history = { items: ['1', '2', '3', '4', '5'].map((id) => String(Number(id) * 7)) };
    const before = await engine.retrieve({ userId: 'u1', scenario: 's', features: { history } });
    assert.ok(before.candidates.length > 0);
    // Every campaign but the first one's is spent; the sequence index still has the old attributes.
    const live = before.candidates[0]!.adId;
    const liveCampaign = market.adUpsert(Number(live) - 1).campaignId!;
    await engine.setCampaignBudgets(Array.from({ length: 200 }, (_, a) => ({ campaignId: `adv${a}`, budget: `adv${a}` === liveCampaign ? 100 : 0 })));
    for (const refreshed of [false, true]) {
      if (refreshed) await generator.refresh();
      const after = await engine.retrieve({ userId: 'u1', scenario: 's', features: { history } });
      assert.ok(after.candidates.length > 0, 'the live campaign\'s ads are still found');
      for (const c of after.candidates) assert.is(market.adUpsert(Number(c.adId) - 1).campaignId, liveCampaign, `ad ${c.adId} (refreshed: ${refreshed})`);
    }
  } finally {
    await engine.close();
    generator.close();
    encoder.close();
  }
});

sequence.run();
