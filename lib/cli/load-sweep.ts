/**
 * `cangen bench --sweep`: offered load from --from req/s up by --step until p99 passes
 * --p99-limit ms, a request fails, or --max-rate, each step --step-seconds of the paced open-loop
 * client (paced-load.ts: offered load is real). One server child per variant (load-variants.ts),
 * one line each in the table and the plot. Per step: offered and achieved rate, p50/p99, errors,
 * and the server's CPU ms per answered request (process.cpuUsage of the child over the step), split
 * into its main thread (HTTP, JSON, the pipeline's JavaScript, inline native calls) and the other
 * threads (the libuv workers' native searches, GC helpers). With --profile, one more step per
 * variant at the highest rate that held, under a V8 CPU profile of the child's main thread, gives
 * where that thread's time goes (cpu-profile.ts) and each generator's time per request.
 * Writes <out>/load-sweep-<date>[-tag].json and .svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { machine } from '../simulator/report';
import { lineChartSvg, palette, type LinePanel } from '../svg-lines';
import { benchToken, requestBodies, serverConfig, startBenchServer, type BenchServer, type LoadBenchArgs } from './bench';
import { seedHistories } from './bench-histories';
import type { ProfileCategory } from './cpu-profile';
import { knownOverrides, variantsNamed } from './load-variants';
import { pacedLoad } from './paced-load';

export interface LoadSweepArgs extends Omit<LoadBenchArgs, 'rate' | 'seconds' | 'client' | 'overrides' | 'env'> {
  variants: string[];
  /** First offered rate, the increment, and the last rate tried (req/s). */
  from: number;
  step: number;
  maxRate: number;
  stepSeconds: number;
  /** A step whose p99 passes this ends the variant's sweep. */
  p99LimitMs: number;
  profile: boolean;
}

export interface SweepStep {
  offered: number;
  achieved: number;
  answered: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** non-2xx answers, transport errors and timeouts. */
  failed: number;
  /** CPU ms of the server per answered request: all threads, its main thread, the others. */
  cpuMsPerRequest: number;
  mainThreadMsPerRequest: number;
  otherThreadsMsPerRequest: number;
  /** Mean time inside the pipeline (the service's histogram) over the step. */
  pipelineMeanMs: number;
  /** Each generator's mean time until it answered, per call, over the step. */
  generatorMeanMs: Record<string, number>;
}

export interface SweepProfile extends SweepStep {
  /** Main-thread self time per answered request, by category, from the V8 CPU profile. */
  mainThread: (ProfileCategory & { msPerRequest: number })[];
}

export interface SweepVariant {
  name: string;
  overrides: Record<string, unknown>;
  env?: Record<string, string>;
  /** Override keys this build's ServiceConfig does not know (not applied). */
  dropped: string[];
  steps: SweepStep[];
  /** The highest offered rate with p99 within the limit and no failures (null: not even the first). */
  maxHeld: number | null;
  profile?: SweepProfile;
}

/** Sum and count of a Prometheus histogram's series, per value of `label` (all other labels summed; none: all under ''). */
export function histogramTotals(metrics: string, name: string, label?: string): Map<string, { sum: number; count: number }> {
  const out = new Map<string, { sum: number; count: number }>();
  for (const m of metrics.matchAll(new RegExp(`^${name}_(sum|count)\\{([^}]*)\\} ([0-9.e+-]+)$`, 'gm'))) {
    const key = label === undefined ? '' : (new RegExp(`${label}="([^"]*)"`).exec(m[2]!)?.[1] ?? '');
    const entry = out.get(key) ?? { sum: 0, count: 0 };
    if (m[1] === 'sum') entry.sum += Number(m[3]);
    else entry.count += Number(m[3]);
    out.set(key, entry);
  }
  return out;
}

/** Mean ms per observation between two scrapes, per label value. */
function meanMsBetween(before: string, after: string, name: string, label?: string): Record<string, number> {
  const a = histogramTotals(before, name, label);
  const out: Record<string, number> = {};
  for (const [key, { sum, count }] of histogramTotals(after, name, label)) {
    const prior = a.get(key) ?? { sum: 0, count: 0 };
    const n = count - prior.count;
    if (n > 0) out[key] = ((sum - prior.sum) / n) * 1000;
  }
  return out;
}

/** One step: `rate` req/s for `seconds`, with the server's CPU and metrics read on both sides. */
async function measureStep(server: BenchServer, body: () => string, rate: number, seconds: number): Promise<SweepStep> {
  const url = server.ready.url;
  const scrape = () => fetch(`${url}/metrics`).then((r) => r.text());
  const metricsBefore = await scrape();
  const cpuBefore = await server.cpu();
  const result = await pacedLoad(`${url}/v1/retrieve`, rate, seconds, body);
  const cpuAfter = await server.cpu();
  const metricsAfter = await scrape();
  const answered = Math.max(1, result.requests.total);
  const allMs = (cpuAfter.cpu.user + cpuAfter.cpu.system - cpuBefore.cpu.user - cpuBefore.cpu.system) / 1000;
  const mainMs = cpuAfter.mainThreadMs - cpuBefore.mainThreadMs;
  const perRequest = (ms: number) => Math.round((ms / answered) * 1000) / 1000;
  return {
    offered: rate,
    achieved: Math.round(result.requests.average),
    answered: result.requests.total,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    failed: result.non2xx + result.errors + result.timeouts,
    cpuMsPerRequest: perRequest(allMs),
    mainThreadMsPerRequest: perRequest(mainMs),
    otherThreadsMsPerRequest: perRequest(allMs - mainMs),
    pipelineMeanMs: meanMsBetween(metricsBefore, metricsAfter, 'cangen_retrieve_duration_seconds')[''] ?? NaN,
    generatorMeanMs: meanMsBetween(metricsBefore, metricsAfter, 'cangen_generator_duration_seconds', 'generator'),
  };
}

const header = `${'variant'.padEnd(16)} ${'offered'.padStart(8)} ${'achieved'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'failed'.padStart(7)} ${'CPU ms/req'.padStart(10)} ${'main'.padStart(6)} ${'other'.padStart(6)} ${'pipeline ms'.padStart(11)}`;

function stepLine(variant: string, s: SweepStep): string {
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  return `${variant.padEnd(16)} ${String(s.offered).padStart(8)} ${String(s.achieved).padStart(8)} ${f(s.latencyMs.p50).padStart(8)} ${f(s.latencyMs.p99).padStart(8)} ${String(s.failed).padStart(7)} ${f(s.cpuMsPerRequest, 3).padStart(10)} ${f(s.mainThreadMsPerRequest, 3).padStart(6)} ${f(s.otherThreadsMsPerRequest, 3).padStart(6)} ${f(s.pipelineMeanMs).padStart(11)}`;
}

/** The profile step's breakdown, as printed lines. */
export function profileLines(variant: string, p: SweepProfile): string[] {
  const lines = [
    `where the CPU goes, '${variant}' at ${p.offered} req/s: ${p.cpuMsPerRequest.toFixed(3)} ms per request = main thread ${p.mainThreadMsPerRequest.toFixed(3)} + other threads (native work on libuv workers, GC helpers) ${p.otherThreadsMsPerRequest.toFixed(3)}`,
  ];
  const busy = p.mainThread.filter((c) => c.category !== 'idle');
  const busyMs = busy.reduce((a, c) => a + c.msPerRequest, 0);
  lines.push(`  main thread, sampled (V8 profile, ${busyMs.toFixed(3)} ms per request busy):`);
  for (const c of busy) {
    const top = c.top.map((t) => `${t.name} ${((t.ms / c.ms) * 100).toFixed(0)}%`).join('; ');
    lines.push(`    ${c.category.padEnd(50)} ${c.msPerRequest.toFixed(3).padStart(7)} ms  ${((c.msPerRequest / busyMs) * 100).toFixed(0).padStart(3)}%   ${top}`);
  }
  const generators = Object.entries(p.generatorMeanMs).sort((a, b) => b[1] - a[1]);
  lines.push(`  generators (mean wall time per call, overlapping): ${generators.map(([g, ms]) => `${g} ${ms.toFixed(2)} ms`).join(', ')}; pipeline ${p.pipelineMeanMs.toFixed(2)} ms`);
  return lines;
}

/** p50 and p99 against offered load, one colour per variant; and CPU per request. */
export function sweepSvg(variants: readonly SweepVariant[], p99LimitMs: number): string {
  const colour = (i: number) => palette[i % palette.length]!;
  const latencyMax = Math.max(2 * p99LimitMs, ...variants.flatMap((v) => v.steps.map((s) => s.latencyMs.p50)));
  const latency: LinePanel = {
    title: 'latency against offered load',
    xLabel: 'offered requests/s',
    yLabel: 'ms (p99 solid, p50 dashed)',
    yMax: Math.min(latencyMax, 4 * p99LimitMs),
    references: [{ y: p99LimitMs, label: `p99 limit ${p99LimitMs} ms` }],
    series: variants.flatMap((v, i) => [
      { label: `${v.name} p99`, colour: colour(i), points: v.steps.map((s) => [s.offered, s.latencyMs.p99] as const) },
      { label: `${v.name} p50`, colour: colour(i), dashed: true, points: v.steps.map((s) => [s.offered, s.latencyMs.p50] as const) },
    ]),
  };
  const cpu: LinePanel = {
    title: 'server CPU per answered request',
    xLabel: 'offered requests/s',
    yLabel: 'CPU ms per request',
    series: variants.map((v, i) => ({ label: v.name, colour: colour(i), points: v.steps.map((s) => [s.offered, s.cpuMsPerRequest] as const) })),
  };
  return lineChartSvg([latency, cpu], variants.map((v, i) => ({ label: v.name, colour: colour(i) })), { width: 420, height: 260 });
}

async function sweepVariant(args: LoadSweepArgs, name: string, print: (line: string) => void): Promise<SweepVariant> {
  const [variant] = variantsNamed([name]);
  const { overrides, dropped } = knownOverrides(variant!);
  if (dropped.length > 0) print(`variant '${name}': ${dropped.join(', ')} not in this build's service config: not applied`);
  const env = variant!.env;
  const server = await startBenchServer({ ...args, rate: args.from, seconds: args.stepSeconds, overrides, env });
  try {
    const { ready } = server;
    print(`variant '${name}': server ready after ${ready.loadSeconds.toFixed(1)} s (RSS ${ready.memoryMiB} MiB)`);
    const scenarios = args.scenario ? [args.scenario] : ['home', 'home', 'search', 'related'];
    const users = args.historyUsers ?? 2000;
    if (args.sequenceModel) {
      const config = serverConfig(args);
      await seedHistories(ready.url, benchToken, args.sequenceModel, users, config.historyLength, config.eventsMaxBatch);
    }
    const body = requestBodies(scenarios, users);
    // Warm-up: JIT, caches, allocator priors.
    await pacedLoad(`${ready.url}/v1/retrieve`, Math.min(200, args.from), Math.max(3, Math.ceil(users / 200)), body);
    const steps: SweepStep[] = [];
    let maxHeld: number | null = null;
    for (let rate = args.from; rate <= args.maxRate; rate += args.step) {
      const step = await measureStep(server, body, rate, args.stepSeconds);
      steps.push(step);
      print(stepLine(name, step));
      if (step.failed > 0 || !(step.latencyMs.p99 <= args.p99LimitMs)) break;
      maxHeld = rate;
    }
    let profile: SweepProfile | undefined;
    if (args.profile) {
      const rate = maxHeld ?? args.from;
      await server.startProfile();
      const step = await measureStep(server, body, rate, args.stepSeconds);
      const categories = await server.stopProfile();
      const answered = Math.max(1, step.answered);
      profile = { ...step, mainThread: categories.map((c) => ({ ...c, msPerRequest: Math.round((c.ms / answered) * 1000) / 1000 })) };
    }
    return { name, overrides, env, dropped, steps, maxHeld, profile };
  } finally {
    await server.stop();
  }
}

export async function runLoadSweep(args: LoadSweepArgs, print: (line: string) => void = console.log) {
  variantsNamed(args.variants); // unknown names fail before any server starts
  print(`sweep: ${args.ads.toLocaleString('en-US')} ads, index ${args.index}, nprobe ${args.nprobe}, efSearch ${args.efSearch}; ${args.from} req/s up by ${args.step} to ${args.maxRate}, ${args.stepSeconds} s a step, until p99 > ${args.p99LimitMs} ms or a failure`);
  print(header);
  const loadBefore = loadavg();
  const variants: SweepVariant[] = [];
  for (const name of args.variants) variants.push(await sweepVariant(args, name, print));
  const loadAfter = loadavg();
  for (const v of variants) {
    print(`'${v.name}' held ${v.maxHeld === null ? 'no step' : `${v.maxHeld} req/s`} with p99 <= ${args.p99LimitMs} ms and no failures`);
    if (v.profile) for (const line of profileLines(v.name, v.profile)) print(line);
  }
  const summary = {
    machine: machine(),
    server: {
      ads: args.ads, index: args.index, nprobe: args.nprobe, efSearch: args.efSearch, sequenceModel: args.sequenceModel,
      // The fast path's budget for tiny native calls (a variant's env may override it).
      inlineMacs: process.env.CANGEN_INLINE_MACS ?? 'default',
    },
    sweep: { from: args.from, step: args.step, maxRate: args.maxRate, stepSeconds: args.stepSeconds, p99LimitMs: args.p99LimitMs, tool: 'paced open loop (evenly spaced sends, latency from the scheduled time, loopback)' },
    // 1-minute load averages around the whole sweep: above ~2 on 2 cores, other work competed.
    loadAverage: { before: loadBefore.map((x) => Number(x.toFixed(2))), after: loadAfter.map((x) => Number(x.toFixed(2))) },
    variants,
  };
  await mkdir(args.out, { recursive: true });
  const base = join(args.out, `load-sweep-${new Date().toISOString().slice(0, 10)}${args.tag ? `-${args.tag}` : ''}`);
  await writeFile(`${base}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(`${base}.svg`, sweepSvg(variants, args.p99LimitMs));
  print(`wrote ${base}.json and ${base}.svg`);
  return summary;
}
