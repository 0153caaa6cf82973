import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../lib/orchestration/random';
import { browsingLog, formatReport, Marketplace, pClick, quotasSvg, simulate } from '../lib/simulator';

const simulator = suite('marketplace simulator');

simulator('the world is deterministic from its seed, and cold ads have no behavioural embedding', () => {
  const a = new Marketplace({ ads: 500, users: 50, seed: 9 });
  const b = new Marketplace({ ads: 500, users: 50, seed: 9 });
  assert.equal(Array.from(a.adTrue.slice(0, 64)), Array.from(b.adTrue.slice(0, 64)));
  assert.equal(a.adTitle.slice(0, 5), b.adTitle.slice(0, 5));
  for (let i = 0; i < a.nAds; i++) {
    const row = a.adBehavioural.subarray(i * a.dim, (i + 1) * a.dim);
    assert.is(row.every((v) => v === 0), a.adCold[i] === 1);
  }
  // Relevance is the truth query's dot product plus quality, and clicks rise with it.
  const q = a.truthQuery(3, 'home');
  let expected = a.adQuality[7]!;
  for (let j = 0; j < a.dim; j++) expected += q[j]! * a.adTrue[7 * a.dim + j]!;
  assert.ok(Math.abs(a.relevance(q, 7) - expected) < 1e-6);
  assert.ok(pClick(2) > pClick(1) && pClick(1) > pClick(0));
  // Browsing (the log a sequence model learns from) is deterministic too, and never clicks a cold ad.
  const log = browsingLog(a, 5, seededRandom(2));
  assert.equal(log, browsingLog(b, 5, seededRandom(2)));
  assert.ok(log.flat().length > 0 && log.flat().every((row) => a.adCold[row] === 0));
});

simulator('a short run through the real pipeline: both arms served, learned quotas move, SVG drawn', async () => {
  // No PyTorch (an interpreter that is not there): the run says why and goes on without the sequence generator.
  const python = process.env.CANGEN_PYTHON;
  process.env.CANGEN_PYTHON = '/nonexistent/python3';
  const status: string[] = [];
  let report;
  try {
    report = await simulate({ ads: 3000, users: 300, requests: 600, window: 100, seed: 3, onStatus: (line) => status.push(line) });
  } finally {
    if (python === undefined) delete process.env.CANGEN_PYTHON;
    else process.env.CANGEN_PYTHON = python;
  }
  assert.is(report.sequence.status, 'skipped');
  assert.match(report.sequence.reason!, /cannot run '\/nonexistent\/python3'.*CANGEN_PYTHON/);
  assert.ok(status.some((line) => /^(unified|browsing) model skipped: cannot run/.test(line)), status.join('\n'));
  assert.equal(report.generators, ['two-tower', 'scorer', 'content', 'popularity']);
  const { static: s, learned: l } = report.arms;
  for (const arm of [s, l]) {
    assert.is(arm.requests, 600);
    assert.ok(arm.clicksPer1000 > 0 && arm.valuePer1000 > 0);
    assert.ok(arm.oracleValuePer1000 >= arm.valuePer1000, 'the oracle is an upper bound');
    assert.ok(Math.abs(arm.regretPer1000 - (arm.oracleValuePer1000 - arm.valuePer1000)) < 1e-6);
  }
  assert.equal(s.finalShares.home, { 'two-tower': 0.25, scorer: 0.25, content: 0.25, popularity: 0.25 });
  const homeShares = Object.values(l.finalShares.home!);
  assert.ok(Math.abs(homeShares.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.ok(Math.max(...homeShares) > 0.3, `learned home shares moved: ${homeShares.map((x) => x.toFixed(2))}`);
  assert.equal(report.quotasOverTime.home!.x, [100, 200, 300, 400, 500, 600]);
  const svg = quotasSvg(report);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.is((svg.match(/<polyline/g) ?? []).length, 3 * 4);
  assert.match(svg, /<\/svg>$/);
  const table = formatReport(report);
  assert.match(table, /clicks\s+[0-9.]+\s+[0-9.]+\s+[+-][0-9.]+%/);
  assert.match(table, /regret \(oracle - achieved\)/);
  assert.match(table, /sequence generator: skipped \(cannot run/);
  // Every shown ad is some generator's: the per-generator counts add up to the slots filled; the
  // scenarios' requests add up to the run's, and their clicks and value to the arm's.
  for (const arm of [s, l]) {
    const scenarios = Object.values(arm.byScenario);
    assert.equal(Object.keys(arm.byScenario), ['home', 'related', 'search']);
    assert.is(scenarios.reduce((n, x) => n + x.requests, 0), 600);
    for (const key of ['clicksPer1000', 'conversionsPer1000', 'valuePer1000'] as const) {
      const total = scenarios.reduce((n, x) => n + (x[key] * x.requests) / 1000, 0);
      assert.ok(Math.abs(total - (arm[key] * 600) / 1000) < 1e-6, `${key}: scenarios ${total}, arm ${(arm[key] * 600) / 1000}`);
    }
    const shown = Object.values(arm.byGenerator).reduce((n, g) => n + g.shownPer1000, 0);
    assert.ok(Math.abs(shown - arm.shownPer1000) < 1e-6 && arm.shownPer1000 > 3000 && arm.shownPer1000 <= 4000, `shown per 1,000 requests: ${shown} of ${arm.shownPer1000}`);
  }
});

simulator('sequence: false runs without the model and says so', async () => {
  const report = await simulate({ ads: 1000, users: 100, requests: 100, window: 50, seed: 4, sequence: false });
  assert.is(report.sequence.status, 'off');
  assert.ok(report.sequence.logEvents > 0, 'the world still browses (the same world either way)');
  assert.not.ok(report.generators.includes('sequence'));
});

simulator.run();
