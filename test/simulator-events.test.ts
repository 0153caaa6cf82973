/**
 * The simulator's logged events (organic engagement, ad clicks and conversions per scenario) and
 * the serving of a multi-task model's scenario heads folded into one query: checked against the
 * native LearnedScorer's own blended scores, and, through the simulator's sequence generator,
 * against a float64 ranking of every ad computed here. No PyTorch needed: the models are written
 * straight into the export format.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, LearnedScorer, SequenceEncoder } from '../lib';
import { seededRandom } from '../lib/orchestration/random';
import { ScenarioHeads } from '../lib';
import { eventLog, eventsCsv, historiesOf, Marketplace, scenarioTruth } from '../lib/simulator';
import { drawScenario, engagementHistories } from '../lib/simulator/event-log';
import { scenarioWeights } from '../lib/simulator/event-models';
import { SimulatorSequenceGenerator } from '../lib/simulator/sequence-generator';
import { randomVectors } from './helpers/random';
import { randomTensors, safetensorsBytes, tempDir, type Config } from './helpers/scorer-model';
import { writeRandomSequenceModel } from './helpers/sequence-random';

const events = suite('simulator: logged events and scenario heads');

events('the event log: labels, scenarios, one event per clicked ad, increasing times, deterministic from the seed', () => {
  const world = () => new Marketplace({ ads: 2000, users: 200, seed: 11 });
  const a = world();
  const log = eventLog(a, 8, seededRandom(4));
  assert.equal(log, eventLog(world(), 8, seededRandom(4)), 'the same seed, the same log');
  assert.not.equal(log, eventLog(world(), 8, seededRandom(5)), 'another seed, another log');

  const count = (label: string, scenario?: string) => log.filter((e) => e.label === label && (!scenario || e.scenario === scenario)).length;
  const scenarios = Object.keys(scenarioTruth);
  for (const s of scenarios) assert.ok(count('click', s) > 0 && count('conversion', s) > 0, `ad clicks and conversions in ${s}`);
  assert.ok(count('conversion') < count('click'), `${count('conversion')} converted of ${count('click') + count('conversion')} clicked ads`);
  assert.is(count('engagement'), count('engagement', 'related'), 'organic browsing is logged on the related surface');
  assert.is(count('engagement') + count('click') + count('conversion'), log.length, 'no other label');
  log.forEach((e, i) => {
    assert.is(e.time, i + 1, 'a running counter');
    assert.is(a.adCold[e.row], 0, 'no cold ad in the log');
    // A conversion is its click's event (one per clicked ad), never a second event on the ad just clicked.
    if (i > 0 && e.label === 'conversion') assert.not.ok(log[i - 1]!.user === e.user && log[i - 1]!.row === e.row && log[i - 1]!.label === 'click', `event ${i}`);
  });
  console.log(`  ${log.length} events: ${count('engagement')} engagement, ${scenarios.map((s) => `${count('click', s)} clicks / ${count('conversion', s)} conversions in ${s}`).join(', ')}`);

  // The truth of the page's scenario decides: home weighs long-term interest, search the session's,
  // so ads of the user's favourite categories take a larger share of home's clicks than of search's.
  const nc = a.categories.length;
  const favouriteShare = (scenario: string) => {
    const clicks = log.filter((e) => e.label === 'click' && e.scenario === scenario);
    return clicks.filter((e) => a.userPrefs[e.user * nc + a.adCategory[e.row]!]! > 0).length / clicks.length;
  };
  assert.ok(favouriteShare('home') > favouriteShare('search') + 0.03, `favourite categories: home ${favouriteShare('home').toFixed(3)}, search ${favouriteShare('search').toFixed(3)}`);
  // Conversions rise with relevance: search's clicked ads (the session's interest, weighted 1.3) convert more often than home's.
  const converted = (scenario: string) => count('conversion', scenario) / (count('click', scenario) + count('conversion', scenario));
  assert.ok(converted('search') > converted('home'), `converted share of clicked ads: search ${converted('search').toFixed(3)}, home ${converted('home').toFixed(3)}`);

  // The CSV: a header, then one row per event, in order.
  const lines = eventsCsv(log).trimEnd().split('\n');
  assert.is(lines[0], 'user,item,timestamp,action,scenario');
  assert.is(lines.length, log.length + 1);
  const e = log[17]!;
  assert.is(lines[18], `u${e.user},${e.row + 1},${e.time},${e.label},${e.scenario}`);

  // Histories: each user's events in order, with `label@scenario` actions; browsing: engagement rows only.
  const histories = historiesOf(log, a.nUsers, true);
  const mine = log.filter((x) => x.user === 7);
  assert.equal(histories[7], { items: mine.map((x) => String(x.row + 1)), actions: mine.map((x) => `${x.label}@${x.scenario}`) });
  assert.equal(historiesOf(log, a.nUsers, false)[7]!.actions, mine.map((x) => x.label));
  assert.equal(engagementHistories(log, a.nUsers)[7], mine.filter((x) => x.label === 'engagement').map((x) => x.row));
});

events('scenarios are drawn in proportion to their weights; the trainer is given weights for the heads the log has', () => {
  const names = Object.keys(scenarioTruth);
  const n = 1000;
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const s = drawScenario(names, (i + 0.5) / n);
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  for (const s of names) assert.is(counts.get(s), Math.round(n * scenarioTruth[s]!.weight), s);
  const log = eventLog(new Marketplace({ ads: 1000, users: 100, seed: 2 }), 4, seededRandom(1));
  const weights = scenarioWeights(log, ['engagement', 'click', 'conversion']);
  assert.equal(Object.keys(weights).sort(), [...names].sort());
  assert.equal(Object.keys(weights.home!).sort(), ['click', 'conversion'], 'no engagement head on home');
  assert.ok('engagement' in weights.related!);
  assert.equal(Object.keys(scenarioWeights(log, ['click']).search!), ['click']);
});

/** A multi-task export's scorer/: a dot scorer with a projection per head and blend weights per scenario. */
function writeHeads(modelDir: string, userDim: number, itemDim: number) {
  const config: Config = {
    format: 'cangen-scorer', version: 1, kind: 'dot', userDim, itemDim, dot: { projection: true },
    heads: ['engagement@related', 'click@home', 'conversion@home', 'click@related', 'click@search'],
    scenarios: { home: { 'click@home': 1, 'conversion@home': 0.5 }, related: { 'engagement@related': 0.7, 'click@related': 1.3 }, search: { 'click@search': 2 } },
  };
  const tensors = randomTensors(config);
  mkdirSync(join(modelDir, 'scorer'), { recursive: true });
  writeFileSync(join(modelDir, 'scorer', 'config.json'), JSON.stringify(config));
  writeFileSync(join(modelDir, 'scorer', 'model.safetensors'), safetensorsBytes(tensors));
  return { config, projection: tensors['dot.proj']!.data };
}

/** sum_h w_h (P_h u) . x in float64, from the weights and tensors as written. */
function referenceScore(config: Config, projection: Float32Array, scenario: string, u: Float32Array, x: Float32Array): number {
  const { userDim: du, itemDim: dx } = config;
  let score = 0;
  (config.heads as string[]).forEach((head, h) => {
    const w = config.scenarios[scenario][head] ?? 0;
    for (let i = 0; i < dx; i++) {
      let p = 0;
      for (let j = 0; j < du; j++) p += projection[h * dx * du + i * du + j]! * u[j]!;
      score += w * p * x[i]!;
    }
  });
  return score;
}

events('folded scenario heads score as the LearnedScorer blends them (and as float64 says)', async () => {
  const dir = tempDir('cangen-heads-');
  try {
    const { config, projection } = writeHeads(dir, 6, 5);
    const heads = (await ScenarioHeads.load(dir))!;
    const scorer = await LearnedScorer.load(join(dir, 'scorer'));
    const n = 12;
    const items = randomVectors(n, 5, 3);
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
    await scorer.add(ids, items);
    const users = randomVectors(3, 6, 4);
    for (const scenario of ['home', 'related', 'search']) {
      const queries = heads.query(users, scenario);
      assert.is(queries.length, 3 * 5);
      const native = await scorer.score(users, ids, { scenario });
      for (let u = 0; u < 3; u++) {
        for (let i = 0; i < n; i++) {
          let folded = 0;
          for (let j = 0; j < 5; j++) folded += queries[u * 5 + j]! * items[i * 5 + j]!;
          const want = referenceScore(config, projection, scenario, users.subarray(u * 6, (u + 1) * 6), items.subarray(i * 5, (i + 1) * 5));
          assert.ok(Math.abs(folded - native[u * n + i]!) < 1e-4 * (1 + Math.abs(want)), `${scenario} user ${u} ad ${i}: folded ${folded}, scorer ${native[u * n + i]}`);
          assert.ok(Math.abs(folded - want) < 1e-4 * (1 + Math.abs(want)), `${scenario} user ${u} ad ${i}: folded ${folded}, float64 ${want}`);
        }
      }
    }
    // A scenario the model does not know: the mean of its scenarios' blends (linear, so the mean of their queries).
    const unknown = heads.query(users, 'checkout');
    const perScenario = heads.scenarios.map((s) => heads.query(users, s));
    unknown.forEach((v, i) => {
      const mean = perScenario.reduce((acc, q) => acc + q[i]!, 0) / perScenario.length;
      assert.ok(Math.abs(v - mean) < 1e-5 * (1 + Math.abs(mean)), `unknown scenario, entry ${i}: ${v} vs mean ${mean}`);
    });
    scorer.close();
    heads.close();
    assert.is(await ScenarioHeads.load(join(dir, 'scorer')), undefined, 'a directory without scorer/ has no heads');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

events('the simulator\'s generator serves the request\'s scenario head: its top ads and scores are the float64 ranking of every eligible ad', async () => {
  const numItems = 60;
  const dir = writeRandomSequenceModel({ model: 'hstu', dim: 8, layers: 1, heads: 2, maxLen: 10, numItems, numActions: 4, normalizeQuery: true }, 21);
  // The items are ad ids, the actions `label@scenario`, as the simulator's log makes them.
  writeFileSync(join(dir, 'items.txt'), Array.from({ length: numItems }, (_, i) => `${i + 1}\n`).join(''));
  writeFileSync(join(dir, 'actions.txt'), ['engagement@related', 'click@home', 'conversion@home', 'click@search'].join('\n') + '\n');
  const { config, projection } = writeHeads(dir, 8, 8);
  const world = new Marketplace({ ads: 100, users: 10, seed: 3 });
  const encoder = await SequenceEncoder.load(dir);
  const heads = (await ScenarioHeads.load(dir))!;
  const adIds = Array.from({ length: world.nAds }, (_, i) => BigInt(i + 1));
  const generator = new SimulatorSequenceGenerator(encoder, adIds, heads);
  const engine = new CandidateEngine({ dim: world.dim, scenarios: ['home', 'search', 'related'].map((name) => ({ name, generators: ['sequence'], k: 10, deadlineMs: 10_000 })), generators: [generator] });
  try {
    await engine.upsertAds(adIds.map((_, i) => world.adUpsert(i)));
    await generator.attach(engine);
    const history = { items: ['3', '17', '4', '250', '42'], actions: ['engagement@related', 'click@home', 'conversion@home', 'click@home', 'click@search'] };
    const known = encoder.rows(history.items);
    const u = await encoder.encode({ items: known, offsets: Uint32Array.of(0, known.length), actions: encoder.actionRows(history.actions) });
    const table = encoder.itemEmbeddings();
    const eligibleRows = Array.from({ length: numItems }, (_, i) => i).filter((i) => engine.store.eligible(BigInt(i + 1), undefined, undefined));
    assert.ok(eligibleRows.length < numItems && eligibleRows.length > 20, `geo-targeted ads are not eligible without a geo: ${eligibleRows.length} of ${numItems}`);
    const tops = new Map<string, bigint[]>();
    for (const scenario of ['home', 'search', 'related']) {
      const want = eligibleRows
        .map((i) => ({ id: BigInt(i + 1), score: referenceScore(config, projection, scenario, u, table.subarray((i + 1) * 8, (i + 2) * 8)) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10);
      const got = await generator.generate({ request: { userId: 'u1', scenario }, features: { history }, scenario, quota: 10, fetch: 10, signal: new AbortController().signal });
      assert.equal(got.map((c) => c.adId), want.map((c) => c.id), `${scenario}: the top 10`);
      got.forEach((c, i) => assert.ok(Math.abs(c.score - want[i]!.score) < 1e-4 * (1 + Math.abs(want[i]!.score)), `${scenario} score ${c.score} vs ${want[i]!.score}`));
      tops.set(scenario, want.map((c) => c.id));
    }
    assert.not.equal(tops.get('home'), tops.get('search'), 'each scenario ranks with its own heads');
    // Through the engine: the same ads, each of them eligible.
    const result = await engine.retrieve({ userId: 'u1', scenario: 'search', features: { history } });
    assert.equal(result.candidates.map((c) => c.adId), tops.get('search'));
  } finally {
    await engine.close();
    generator.close();
    heads.close();
    encoder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

events.run();
