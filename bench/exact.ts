/**
 * Exact top-10 inner-product search: cangen's FlatIndex (AdIndex kind 'flat') side by side with FAISS (through our addon
 * and Debian's python3-faiss), usearch exactSearch and hnswlib-node brute force, in one run.
 *
 *   npx tsx bench/exact.ts [--quick] [--threads N] [--sizes 100k,1M] [--dims 64,128]
 *                          [--batches 1,16,256] [--engines usearch,hnswlib,...] [--budget S] [--out FILE] [--record]
 *
 * Prints a table on stdout (progress on stderr) and writes results/exact-<date>.json (with --record:
 * bench/results/, the figures the repository publishes).
 * See bench/README.md for what each column means.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { buildInfo, measureCeilings, type Ceilings } from '../lib';
import { normalMatrix, seedFor } from './data';
import { engines, measure, median, pythonFaissVersion, type Dataset, type Driver, type MeasurePlan } from './drivers';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

// ---------------------------------------------------------------------------------------------
// The trials: what is measured, declared once. Flags narrow it; --quick swaps the plan.
// ---------------------------------------------------------------------------------------------
const trials = {
  k: 10,
  sizes: [100_000, 1_000_000],
  dims: [64, 128],
  batches: [1, 16, 256],
  /** Queries drawn per corpus; each cell cycles through up to 8 distinct batches of them. */
  queryPool: 512,
  distinctBatches: 8,
  plans: {
    full: { minReps: 5, maxReps: 50, budgetMs: 8_000, capMs: 15_000 },
    quick: { minReps: 3, maxReps: 10, budgetMs: 1_500, capMs: 5_000 },
  } satisfies Record<string, MeasurePlan>,
  /** A cell whose batch is predicted (from the engine's previous batch size) to take longer is skipped. */
  skipPredictedMs: 120_000,
  quickSizes: [100_000],
};

// Goals printed as PASS/MISS at the end (ours = cangen FlatIndex; peers = every other engine).
const goals = {
  corpus: { n: 1_000_000, dim: 64 },
  speedupOverBestPeerAt256: 2,
  /** bf16 / int8 scans at batch 256 against our fp32 scan, with identical results. */
  reducedSpeedupAt256: 1.8,
  flopFractionAt256: 0.5,
  bandwidthRatioAt1: 1.3,
};

// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  threads: number;
  sizes: number[];
  dims: number[];
  batches: number[];
  engines: string[];
  plan: MeasurePlan;
  out: string;
}

interface Cell {
  n: number;
  dim: number;
  batch: number;
  engine: string;
  label: string;
  threads: number;
  status: 'ok' | 'skipped' | 'unavailable' | 'error';
  buildMs?: number;
  msPerBatch?: number;
  qps?: number;
  reps?: number;
  timesMs?: number[];
  recallVsOurs?: number;
  flopFraction?: number;
  bandwidthFloorRatio?: number;
  precision?: 'fp32' | 'bf16' | 'int8';
  bytesPerAd?: number;
  mark?: string;
}

interface Goal {
  goal: string;
  value: string;
  result: 'PASS' | 'MISS' | 'N/A';
}

function parseArgs(argv: string[]): Options {
  const known = ['--quick', '--threads', '--sizes', '--dims', '--batches', '--engines', '--budget', '--out', '--record', '--help'];
  const values = readFlags(argv, known, __filename);
  const quick = values.has('--quick');
  const list = (flag: string, fallback: number[]) =>
    values.has(flag) ? values.get(flag)!.split(',').map((s) => parseCount(s, flag)) : fallback;
  const threads = values.has('--threads') ? parseCount(values.get('--threads')!, '--threads') : os.availableParallelism();
  const plan = { ...(quick ? trials.plans.quick : trials.plans.full) };
  if (values.has('--budget')) plan.budgetMs = Number(values.get('--budget')) * 1000;
  if (!(plan.budgetMs > 0)) throw new Error(`Expected a positive number of seconds for --budget but received ${values.get('--budget')}`);
  const keys = engines.map((e) => e.key);
  const chosen = values.has('--engines') ? values.get('--engines')!.split(',') : keys;
  for (const key of chosen) if (!keys.includes(key)) throw new Error(`Unknown engine ${key}; expected some of ${keys.join(', ')}`);
  return {
    quick,
    threads,
    sizes: list('--sizes', quick ? trials.quickSizes : trials.sizes),
    dims: list('--dims', trials.dims),
    batches: list('--batches', trials.batches),
    // Ours always runs: it is the reference for recall and the goals.
    engines: keys.filter((key) => key === 'cangen-flat' || chosen.includes(key)),
    plan,
    out: values.get('--out') ?? join(resultsDir(values.has('--record')), `exact-${new Date().toISOString().slice(0, 10)}${quick ? '-quick' : ''}.json`),
  };
}

/** Runs the GC (exposed at runtime) so that a freed engine's copy of the corpus goes before the next builds. */
const collect: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  return () => gc?.();
})();

function recallAt(peer: BigInt64Array, ours: BigInt64Array, batch: number, k: number): number {
  let hits = 0;
  for (let i = 0; i < batch; i++) {
    const truth = new Set<bigint>();
    for (let j = 0; j < k; j++) {
      const id = ours[i * k + j]!;
      if (id >= 0n) truth.add(id);
    }
    for (let j = 0; j < k; j++) if (truth.has(peer[i * k + j]!)) hits++;
  }
  return hits / (batch * k);
}

const fmt = {
  count: (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n)),
  num: (x: number | undefined, digits = 0) =>
    x === undefined ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }),
  ms: (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)),
  pct: (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`),
};

function table(cells: Cell[]): string {
  const head = ['corpus', 'batch', 'engine', 'thr', 'build s', 'ms/batch', 'QPS', 'recall@10', '%FLOP peak', 'x BW floor', 'bytes/ad', 'notes'];
  const rows: string[][] = [];
  let last = '';
  for (const c of cells) {
    const corpus = `${fmt.count(c.n)} x ${c.dim}`;
    const group = `${corpus}/${c.batch}`;
    if (last && group !== last) rows.push([]);
    last = group;
    rows.push([
      corpus,
      String(c.batch),
      c.label,
      String(c.threads),
      c.buildMs === undefined ? '-' : (c.buildMs / 1000).toFixed(2),
      fmt.ms(c.msPerBatch),
      fmt.num(c.qps, c.qps !== undefined && c.qps < 100 ? 1 : 0),
      c.recallVsOurs === undefined ? '-' : c.engine === 'cangen-flat' ? 'ref' : c.recallVsOurs.toFixed(3),
      fmt.pct(c.flopFraction),
      c.bandwidthFloorRatio === undefined ? '-' : `${c.bandwidthFloorRatio.toFixed(2)}x`,
      c.bytesPerAd === undefined ? '-' : c.bytesPerAd.toFixed(0),
      c.mark ?? '',
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = new Set([1, 3, 4, 5, 6, 7, 8, 9, 10]);
  const line = (r: string[]) =>
    r.length === 0 ? '' : r.map((v, i) => (right.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function evaluateGoals(cells: Cell[]): Goal[] {
  const { n, dim } = goals.corpus;
  const at = (batch: number) => cells.filter((c) => c.n === n && c.dim === dim && c.batch === batch && c.status === 'ok');
  const corpus = `${fmt.count(n)} x ${dim}`;
  const out: Goal[] = [];
  const ours256 = at(256).find((c) => c.engine === 'cangen-flat');
  const peers256 = at(256).filter((c) => !c.engine.startsWith('cangen-flat'));
  const best = peers256.reduce<Cell | undefined>((b, c) => (b === undefined || c.qps! > b.qps! ? c : b), undefined);
  out.push(
    ours256 && best
      ? {
          goal: `batch 256 on ${corpus}: ours >= ${goals.speedupOverBestPeerAt256}x the best peer`,
          value: `${(ours256.qps! / best.qps!).toFixed(2)}x (${fmt.num(ours256.qps)} vs ${fmt.num(best.qps)} QPS, ${best.label})`,
          result: ours256.qps! >= goals.speedupOverBestPeerAt256 * best.qps! ? 'PASS' : 'MISS',
        }
      : { goal: `batch 256 on ${corpus}: ours >= ${goals.speedupOverBestPeerAt256}x the best peer`, value: 'not measured in this run', result: 'N/A' },
  );
  out.push(
    ours256
      ? {
          goal: `batch 256 on ${corpus}: ours >= ${goals.flopFractionAt256 * 100}% of the FLOP ceiling`,
          value: fmt.pct(ours256.flopFraction),
          result: ours256.flopFraction! >= goals.flopFractionAt256 ? 'PASS' : 'MISS',
        }
      : { goal: `batch 256 on ${corpus}: ours >= ${goals.flopFractionAt256 * 100}% of the FLOP ceiling`, value: 'not measured in this run', result: 'N/A' },
  );
  for (const reduced of at(256).filter((c) => c.precision === 'bf16' || c.precision === 'int8')) {
    const goal = `batch 256 on ${corpus}: ${reduced.precision} >= ${goals.reducedSpeedupAt256}x our fp32 QPS, identical results`;
    out.push(
      ours256
        ? {
            goal,
            value: `${(reduced.qps! / ours256.qps!).toFixed(2)}x (${fmt.num(reduced.qps)} vs ${fmt.num(ours256.qps)} QPS), recall ${reduced.recallVsOurs?.toFixed(3)}`,
            result: reduced.qps! >= goals.reducedSpeedupAt256 * ours256.qps! && reduced.recallVsOurs === 1 ? 'PASS' : 'MISS',
          }
        : { goal, value: 'fp32 not measured in this run', result: 'N/A' },
    );
  }
  const ours1 = at(1).find((c) => c.engine === 'cangen-flat');
  out.push(
    ours1
      ? {
          goal: `batch 1 on ${corpus}: ours within ${goals.bandwidthRatioAt1}x of the bandwidth floor`,
          value: `${ours1.bandwidthFloorRatio!.toFixed(2)}x`,
          result: ours1.bandwidthFloorRatio! <= goals.bandwidthRatioAt1 ? 'PASS' : 'MISS',
        }
      : { goal: `batch 1 on ${corpus}: ours within ${goals.bandwidthRatioAt1}x of the bandwidth floor`, value: 'not measured in this run', result: 'N/A' },
  );
  return out;
}

/** The best of three measurements of each ceiling (a ceiling is a maximum; noise only lowers it). */
async function robustCeilings(threads: number): Promise<Ceilings> {
  const runs: Ceilings[] = [];
  for (let i = 0; i < 3; i++) runs.push(await measureCeilings(threads, 1024));
  return bestCeilings(runs);
}

function bestCeilings(runs: Ceilings[]): Ceilings {
  const best = (pick: (c: Ceilings) => number) => Math.max(...runs.map(pick));
  return {
    peakFlops: best((c) => c.peakFlops),
    peakBf16Flops: best((c) => c.peakBf16Flops),
    peakInt8Ops: best((c) => c.peakInt8Ops),
    readBandwidth: best((c) => c.readBandwidth),
  };
}

/** The FLOP (or int8 op) ceiling and bytes per value of a cell's precision. */
function precisionCeiling(ceilings: Ceilings, precision: Cell['precision']): { peak: number; bytesPerValue: number } {
  if (precision === 'bf16') return { peak: ceilings.peakBf16Flops, bytesPerValue: 2 };
  if (precision === 'int8') return { peak: ceilings.peakInt8Ops, bytesPerValue: 1 };
  return { peak: ceilings.peakFlops, bytesPerValue: 4 };
}


function log(message: string) {
  process.stderr.write(`${message}\n`);
}

async function runCorpus(n: number, dim: number, drivers: Driver[], unavailable: Map<string, string>, o: Options, ceilings: Ceilings, cells: Cell[]) {
  const k = trials.k;
  let start = performance.now();
  const data: Dataset = { vectors: normalMatrix(n, dim, seedFor('corpus', n, dim)), n, dim };
  const queries = normalMatrix(trials.queryPool, dim, seedFor('queries', n, dim));
  log(`\n== ${fmt.count(n)} x ${dim}: data generated in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  // Fresh, slice()d batches (usearch ignores byteOffset); batch 0 of each size is the recall batch.
  const batchesFor = new Map<number, Float32Array[]>();
  for (const b of o.batches) {
    const count = Math.max(1, Math.min(trials.distinctBatches, Math.floor(trials.queryPool / b)));
    const list: Float32Array[] = [];
    for (let i = 0; i < count; i++) {
      const from = ((i * b) % trials.queryPool) * dim;
      const batch = new Float32Array(b * dim);
      for (let j = 0; j < b * dim; j++) batch[j] = queries[(from + j) % queries.length]!;
      list.push(batch);
    }
    batchesFor.set(b, list);
  }
  const reference = new Map<number, BigInt64Array>();
  for (const driver of drivers) {
    const base = { n, dim, engine: driver.key, label: driver.label, threads: driver.threads, precision: driver.precision };
    const why = unavailable.get(driver.key);
    if (why) {
      for (const batch of o.batches) cells.push({ ...base, batch, status: 'unavailable', mark: why });
      continue;
    }
    let buildMs: number | undefined;
    try {
      start = performance.now();
      await driver.build(data);
      buildMs = performance.now() - start;
      log(`${driver.label}: built in ${(buildMs / 1000).toFixed(2)} s`);
      const bytesPerAd = await driver.bytesPerAd?.();
      const { peak, bytesPerValue } = precisionCeiling(ceilings, driver.precision);
      let perQueryMs: number | undefined;
      for (const batch of o.batches) {
        const cell: Cell = { ...base, batch, status: 'ok', buildMs, bytesPerAd };
        const predicted = perQueryMs === undefined ? 0 : perQueryMs * batch;
        if (predicted > trials.skipPredictedMs) {
          cells.push({ ...cell, status: 'skipped', mark: `skipped: est. ${(predicted / 1000).toFixed(0)} s per batch` });
          log(`${driver.label} batch ${batch}: skipped (est. ${(predicted / 1000).toFixed(0)} s)`);
          continue;
        }
        try {
          const m = await measure(driver, batchesFor.get(batch)!, batch, k, o.plan);
          const ms = median(m.timesMs);
          perQueryMs = ms / batch;
          if (driver.ours) reference.set(batch, m.firstIds);
          const ref = reference.get(batch);
          Object.assign(cell, {
            msPerBatch: ms,
            qps: (batch * 1000) / ms,
            reps: m.timesMs.length,
            timesMs: m.timesMs.map((t) => Math.round(t * 1000) / 1000),
            recallVsOurs: ref ? recallAt(m.firstIds, ref, batch, k) : undefined,
            flopFraction: (2 * n * dim * batch) / (ms / 1000) / peak,
            bandwidthFloorRatio: batch === 1 ? ms / 1000 / ((n * dim * bytesPerValue) / ceilings.readBandwidth) : undefined,
            mark: m.capped,
          });
          log(
            `${driver.label} batch ${batch}: ${fmt.ms(ms)} ms/batch, ${fmt.num(cell.qps, 1)} QPS, ` +
              `recall ${cell.recallVsOurs?.toFixed(3) ?? '-'}, ${m.timesMs.length} reps${m.capped ? ` (${m.capped})` : ''}`,
          );
        } catch (error) {
          Object.assign(cell, { status: 'error', mark: `error: ${(error as Error).message.split('\n')[0]}` });
          log(`${driver.label} batch ${batch}: ${cell.mark}`);
        }
        cells.push(cell);
      }
    } catch (error) {
      const mark = `error: ${(error as Error).message.split('\n')[0]}`;
      log(`${driver.label}: ${mark}`);
      for (const batch of o.batches) cells.push({ ...base, batch, status: 'error', buildMs, mark });
    } finally {
      await driver.free().catch((error: Error) => log(`${driver.label}: free failed: ${error.message}`));
      collect();
    }
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const date = new Date().toISOString().slice(0, 10);
  const info = buildInfo();
  log(`cangen exact-search benchmark: ${o.quick ? 'quick' : 'full'} run, ${o.threads} threads, ` +
    `sizes ${o.sizes.map(fmt.count).join(',')}, dims ${o.dims.join(',')}, batches ${o.batches.join(',')}`);
  const loadBefore = os.loadavg();
  if (loadBefore[0]! > 0.5) log(`warning: 1-minute load average is ${loadBefore[0]!.toFixed(2)} before the run: other work will skew timings`);
  const ceilingRuns: Ceilings[] = [await robustCeilings(o.threads)];
  let ceilings = ceilingRuns[0]!;
  log(`ceilings (${o.threads} threads): ${(ceilings.peakFlops / 1e9).toFixed(1)} GFLOP/s, ${(ceilings.readBandwidth / 1e9).toFixed(1)} GB/s read`);

  const drivers = engines.filter((e) => o.engines.includes(e.key)).map((e) => e.create(o.threads));
  const unavailable = new Map<string, string>();
  for (const d of drivers) {
    const why = await d.unavailable();
    if (why) unavailable.set(d.key, why);
  }
  const machine = machineInfo({ 'python3-faiss': pythonFaissVersion() ?? 'not installed' });
  const cells: Cell[] = [];
  const file = o.out;
  mkdirSync(join(file, '..'), { recursive: true });
  const save = (final: Record<string, unknown>) =>
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          benchmark: 'exact',
          date: new Date().toISOString(),
          machine,
          threads: o.threads,
          options: { quick: o.quick, sizes: o.sizes, dims: o.dims, batches: o.batches, k: trials.k, plan: o.plan, engines: o.engines },
          ceilings,
          ceilingRuns,
          notes: Object.fromEntries(drivers.filter((d) => d.note).map((d) => [d.key, d.note])),
          ...final,
          cells,
        },
        null,
        2,
      )}\n`,
    );
  const started = performance.now();
  try {
    for (const n of o.sizes) {
      for (const dim of o.dims) {
        await runCorpus(n, dim, drivers, unavailable, o, ceilings, cells);
        // Partial results survive a run that is cut short.
        save({ partial: true, loadAverage: { before: loadBefore, now: os.loadavg() } });
      }
    }
  } finally {
    for (const d of drivers) await d.close?.().catch(() => undefined);
  }
  const wallS = (performance.now() - started) / 1000;
  const loadAfter = os.loadavg();
  // Ceilings are maxima: a second measurement after the run guards against a busy moment at the start.
  ceilingRuns.push(await robustCeilings(o.threads));
  const best = bestCeilings(ceilingRuns);
  for (const c of cells) {
    if (c.msPerBatch === undefined) continue;
    const { peak, bytesPerValue } = precisionCeiling(best, c.precision);
    c.flopFraction = (2 * c.n * c.dim * c.batch) / (c.msPerBatch / 1000) / peak;
    if (c.batch === 1) c.bandwidthFloorRatio = c.msPerBatch / 1000 / ((c.n * c.dim * bytesPerValue) / best.readBandwidth);
  }
  ceilings = best;
  // Group rows by corpus and batch size, engines in table order.
  const order = new Map(drivers.map((d, i) => [d.key, i]));
  cells.sort((a, b) => a.n - b.n || a.dim - b.dim || a.batch - b.batch || order.get(a.engine)! - order.get(b.engine)!);
  const goalResults = evaluateGoals(cells);

  const out: string[] = [];
  out.push(`Exact top-${trials.k} inner-product search, ${date}, ${machine.cpu} (${machine.cores} cores, ${machine.memoryGiB} GiB), Node ${machine.node}`);
  out.push(`cangen ${info.version} (scan ${info.scanSimd}, FAISS ${info.faissVersion} ${info.faissSimd}); ${o.threads} threads unless noted; ` +
    `random normal data; ${o.quick ? 'quick' : 'full'} run took ${(wallS / 60).toFixed(1)} min`);
  out.push(`Machine ceilings (${o.threads} threads): ${(ceilings.peakFlops / 1e9).toFixed(1)} GFLOP/s fp32 FMA, ` +
    `${(ceilings.peakBf16Flops / 1e9).toFixed(1)} GFLOP/s bf16 (${info.bf16Simd}), ` +
    `${(ceilings.peakInt8Ops / 1e9).toFixed(1)} GOP/s int8 (${info.int8Simd}), ` +
    `${(ceilings.readBandwidth / 1e9).toFixed(1)} GB/s streaming read`);
  out.push(`Load average (1 min) ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after the run` +
    (Math.max(loadBefore[0]!, loadAfter[0]!) > 0.5 ? ': the machine was not idle, timings may be low' : ''));
  out.push('');
  out.push(table(cells));
  out.push('');
  out.push('Notes:');
  for (const d of drivers) if (d.note) out.push(`  ${d.label}: ${d.note}`);
  out.push('  recall@10 is the peer\'s top-10 against ours on the first batch of each cell (ref = ours).');
  out.push('  %FLOP peak = 2*n*dim*batch / time / the ceiling of the row\'s precision (fp32 FMA, bf16 or int8 dot products);');
  out.push('  x BW floor (batch 1) = time / (n*dim*bytes per value / read bandwidth); bytes/ad = the index\'s resident bytes per ad.');
  out.push('  bf16 and int8 rows scan a reduced copy and re-rank in fp32 the candidates a proven bound cannot rule out:');
  out.push('  their answers equal the fp32 row\'s (recall 1.000 by construction, checked here), at the cost of the extra copy.');
  out.push('');
  out.push('Goals:');
  for (const g of goalResults) out.push(`  ${g.result.padEnd(4)}  ${g.goal}: ${g.value}`);
  console.log(out.join('\n'));

  save({
    partial: false,
    loadAverage: { before: loadBefore, after: loadAfter },
    wallSeconds: Math.round(wallS),
    goals: goalResults,
  });
  log(`\nwrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
