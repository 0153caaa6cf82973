import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { categoryOf, mainThreadCpuMs, summarizeProfile } from '../lib/cli/cpu-profile';
import { histogramTotals, sweepSvg, type SweepStep, type SweepVariant } from '../lib/cli/load-sweep';
import { knownOverrides, loadVariants, variantsNamed } from '../lib/cli/load-variants';
import { niceTicks } from '../lib/svg-lines';

const sweep = suite('the load sweep: variants, metrics deltas, CPU profile categories, plot');

sweep('variants: a row per name; keys the config does not know are dropped, known ones kept', () => {
  assert.equal(variantsNamed(['before']).map((v) => v.name), ['before']);
  assert.throws(() => variantsNamed(['nope']), /Unknown variant 'nope'.*before/);
  const { overrides, dropped } = knownOverrides({ name: 'x', overrides: { nprobe: 4, notAConfigKey: true } });
  assert.equal(overrides, { nprobe: 4 });
  assert.equal(dropped, ['notAConfigKey']);
  for (const v of loadVariants) assert.ok(v.name.length > 0 && typeof v.overrides === 'object');
});

sweep('histogramTotals sums sum and count per label value over the other labels', () => {
  const metrics = [
    '# HELP cangen_generator_duration_seconds x',
    'cangen_generator_duration_seconds_bucket{le="0.1",scenario="home",generator="scorer",status="ok"} 3',
    'cangen_generator_duration_seconds_sum{scenario="home",generator="scorer",status="ok"} 0.5',
    'cangen_generator_duration_seconds_count{scenario="home",generator="scorer",status="ok"} 4',
    'cangen_generator_duration_seconds_sum{scenario="search",generator="scorer",status="timeout"} 0.25',
    'cangen_generator_duration_seconds_count{scenario="search",generator="scorer",status="timeout"} 1',
    'cangen_generator_duration_seconds_sum{scenario="home",generator="content",status="ok"} 1e-3',
    'cangen_generator_duration_seconds_count{scenario="home",generator="content",status="ok"} 2',
  ].join('\n');
  const totals = histogramTotals(metrics, 'cangen_generator_duration_seconds', 'generator');
  assert.equal(totals.get('scorer'), { sum: 0.75, count: 5 });
  assert.equal(totals.get('content'), { sum: 0.001, count: 2 });
  assert.equal(histogramTotals(metrics, 'cangen_generator_duration_seconds').get(''), { sum: 0.751, count: 7 });
});

sweep('summarizeProfile adds self time by category, each sample standing for the time to the next', () => {
  const frame = (id: number, functionName: string, url: string) => ({ id, callFrame: { functionName, url } });
  const profile = {
    nodes: [
      frame(1, '(root)', ''),
      frame(2, 'handler', 'file:///srv/app/lib/service/server.ts'),
      frame(3, 'serialize', 'file:///srv/app/node_modules/fastify/lib/reply.js'),
      frame(4, 'search', ''),
      frame(5, '(garbage collector)', ''),
      frame(6, 'emit', 'node:events'),
      frame(7, '(idle)', ''),
    ],
    samples: [2, 2, 3, 4, 5, 6, 7, 2],
    timeDeltas: [0, 100, 200, 300, 400, 500, 600, 700], // the last sample has no successor: 0
  };
  const byCategory = Object.fromEntries(summarizeProfile(profile).map((c) => [c.category, c.ms * 1000]));
  assert.equal(byCategory, {
    'cangen JavaScript (lib/)': 100 + 200,
    'fastify and its HTTP/JSON helpers': 300,
    'native calls (the addon, JSON, other builtins)': 400,
    'garbage collection': 500,
    'node core (http, net, streams)': 600,
    idle: 700,
  });
  const lib = summarizeProfile(profile).find((c) => c.category === 'cangen JavaScript (lib/)')!;
  assert.equal(lib.top, [{ name: 'handler lib/service/server.ts', ms: 0.3 }]);
  assert.is(categoryOf({ functionName: 'get', url: 'file:///x/node_modules/prom-client/lib/registry.js' }), 'other dependencies (prom-client, ...)');
  assert.is(categoryOf({ functionName: 'writev', url: '' }), 'node core (http, net, streams)');
});

sweep('mainThreadCpuMs reads this thread and grows with its work (in 10 ms ticks)', () => {
  const before = mainThreadCpuMs();
  if (Number.isNaN(before)) return; // not Linux
  // Busy on this thread until the process has spent 100 ms of CPU (wall time varies with load).
  const start = process.cpuUsage();
  const spent = () => {
    const { user, system } = process.cpuUsage(start);
    return (user + system) / 1000;
  };
  let x = 0;
  while (spent() < 100) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
  const counted = mainThreadCpuMs() - before;
  // The main thread did nearly all of it; ticks of 10 ms round either way.
  assert.ok(counted >= 60 && counted <= spent() + 30, `${spent().toFixed(0)} ms of CPU, ${counted} ms counted for this thread`);
});

sweep('the sweep plot has a p99 and a p50 line per variant and a CPU line per variant', () => {
  const step = (offered: number, p50: number, p99: number): SweepStep => ({
    offered, achieved: offered, answered: offered, latencyMs: { p50, p90: p99, p99, max: p99 }, failed: 0,
    cpuMsPerRequest: 1, mainThreadMsPerRequest: 0.8, otherThreadsMsPerRequest: 0.2, pipelineMeanMs: 1, generatorMeanMs: {},
  });
  const variant = (name: string): SweepVariant => ({ name, overrides: {}, dropped: [], steps: [step(250, 2, 8), step(500, 3, 70)], maxHeld: 250 });
  const svg = sweepSvg([variant('before'), variant('batching')], 50);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.is((svg.match(/<polyline/g) ?? []).length, 2 * 2 + 2);
  assert.match(svg, /p99 limit 50 ms/);
  assert.match(svg, /<\/svg>$/);
});

sweep('niceTicks: round steps from 0 past the maximum', () => {
  assert.equal(niceTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.equal(niceTicks(1800), [0, 500, 1000, 1500, 2000]);
  assert.equal(niceTicks(0), [0, 1]);
});

sweep.run();
