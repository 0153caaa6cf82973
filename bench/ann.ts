/**
 * Approximate nearest-neighbour search: recall@10 against QPS for every cangen AdIndex kind,
 * side by side with hnswlib-node and usearch, on clustered synthetic data, in one run.
 *
 *   npx tsx bench/ann.ts [--quick] [--sizes 1Mx96,100kx128] [--kinds hnsw,ivf-pq,hnswlib,...]
 *                        [--threads N] [--out FILE] [--record]
 *   npx tsx bench/ann.ts --replot bench/results/ann-<date>.json    (tables and SVG again, from a JSON)
 *
 * Data: a mixture of 1000 Gaussians (fixed seeds); queries from the same mixture, not in the
 * corpus; squared L2 distance; exact ground truth from AdIndex kind 'flat'. Each index is built
 * once and its search parameter swept (efSearch, nprobe, rerank); every point is timed at batch 1
 * on one thread and at batch 256 on all threads.
 *
 * Prints a table on stdout (progress on stderr) and writes results/ann-<date>[-quick].json (with
 * --record: bench/results/, the figures the repository publishes)
 * and .svg (recall against QPS, one line per index). See bench/ANN.md for the columns.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { mixtureMatrix, defaultMixture } from './ann/data';
import { cangenDriver, hnswlibDriver, usearchDriver, type AnnDriver, type MemoryEstimate, type SweepPoint } from './ann/drivers';
import { renderSvg, type PlotPanel } from './ann/svg';
import type { Dataset } from './drivers/driver';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

// ---------------------------------------------------------------------------------------------
// The trials, declared once. Flags narrow them; --quick swaps the plan.
// ---------------------------------------------------------------------------------------------
const trials = {
  k: 10,
  metric: 'l2' as const,
  sizes: [
    { n: 1_000_000, dim: 96 },
    { n: 100_000, dim: 128 },
  ],
  quickSizes: [{ n: 100_000, dim: 96 }],
  hnsw: { m: 32, efConstruction: 80 },
  batch: 256,
  /** Untimed single queries before each driver's first point (warmUp): at most this many calls or ms. */
  warmUp: { calls: 3_000, ms: 2_000 },
  plans: {
    full: {
      singleQueries: 500, // batch 1: the first 500 queries, one at a time
      batchedQueries: 1024, // batch 256: 4 batches
      singleBudgetMs: 6_000, // a point stops after this (at least minSingle queries)
      batchBudgetMs: 8_000,
      minSingle: 50,
      ef: [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
      nprobe: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      rerankNprobe: [4, 8, 16, 32, 64, 128],
      rerank: [2, 4, 16],
    },
    quick: {
      singleQueries: 200,
      batchedQueries: 512,
      singleBudgetMs: 2_000,
      batchBudgetMs: 4_000,
      minSingle: 50,
      ef: [16, 32, 64, 128, 256, 512],
      nprobe: [1, 4, 16, 64, 256],
      rerankNprobe: [8, 32, 128],
      rerank: [4, 16],
    },
  },
  /** A sweep stops once a point reaches this recall: larger settings only cost time. */
  stopAtRecall: 0.999,
};

type Plan = (typeof trials.plans)['full'];

/** Every engine, in table order; 'flat' (exact) always runs first: it is the ground truth. */
// HNSW family first (the peers' builds are the longest: a run cut short still has the comparison).
const kindKeys = ['flat', 'hnsw', 'hnswlib', 'usearch', 'ivf-flat', 'ivf-sq8', 'ivf-pq', 'ivf-pq-d', 'ivf-pq-rerank'] as const;
type KindKey = (typeof kindKeys)[number];

/** About 4 x sqrt(n) lists, rounded to a power of two (100k: 1024, 1M: 4096). */
const nlistFor = (n: number) => 2 ** Math.round(Math.log2(4 * Math.sqrt(n)));

function sweepFor(key: KindKey, plan: Plan, nlist: number): SweepPoint[] {
  const nprobes = plan.nprobe.filter((p) => p <= nlist);
  switch (key) {
    case 'flat':
      return [{ label: 'exact' }];
    case 'hnsw':
    case 'hnswlib':
    case 'usearch':
      return plan.ef.map((ef) => ({ label: `ef=${ef}`, efSearch: ef }));
    case 'ivf-pq-rerank':
      return plan.rerankNprobe
        .filter((p) => p <= nlist)
        .flatMap((nprobe) => plan.rerank.map((rerank) => ({ label: `nprobe=${nprobe} rerank=${rerank}`, nprobe, rerank })));
    default:
      return nprobes.map((nprobe) => ({ label: `nprobe=${nprobe}`, nprobe }));
  }
}

function createDriver(key: KindKey, n: number, dim: number, threads: number, collect: () => void): AnnDriver {
  const nlist = nlistFor(n);
  const pq = dim / 2;
  const { m, efConstruction } = trials.hnsw;
  const metric = trials.metric;
  switch (key) {
    case 'flat':
      return cangenDriver({ key, label: 'cangen flat (exact)', options: { kind: 'flat' } }, threads, metric);
    case 'hnsw':
      return cangenDriver({ key, label: `cangen hnsw M${m}`, options: { kind: 'hnsw', hnswM: m, efConstruction } }, threads, metric);
    case 'ivf-flat':
      return cangenDriver({ key, label: `cangen ivf-flat ${nlist}`, options: { kind: 'ivf-flat', nlist } }, threads, metric);
    case 'ivf-sq8':
      return cangenDriver(
        { key, label: `cangen ivf-sq8 ${nlist}`, options: { kind: 'ivf-sq8', nlist, storeVectors: false } },
        threads,
        metric,
      );
    case 'ivf-pq':
      return cangenDriver(
        {
          key,
          label: `cangen ivf-pq ${nlist} pq${pq}`,
          options: { kind: 'ivf-pq', nlist, pqBytes: pq, opq: false, storeVectors: false },
          note:
            `IVF${nlist},PQ${pq}, codes only (storeVectors: false): no re-ranking, the memory-goal row. No OPQ: training it ` +
            'kills the process in this build (undefined symbol _gfortran_concat_string from the static OpenBLAS/LAPACK)',
        },
        threads,
        metric,
      );
    case 'ivf-pq-d':
      return cangenDriver(
        {
          key,
          label: `cangen faiss IVF${nlist},PQ${dim}np`,
          options: { kind: 'faiss', factory: `IVF${nlist},PQ${dim}np`, storeVectors: false },
          note:
            `kind 'faiss' IVF${nlist},PQ${dim}np, codes only: IVF-PQ with one byte per dimension (kind 'ivf-pq' ` +
            `pqBytes ${dim} without polysemous training, which would take minutes and not change results)`,
        },
        threads,
        metric,
      );
    case 'ivf-pq-rerank':
      // Kind 'faiss' with the same IVF-PQ plus 'np': kind 'ivf-pq' trains polysemous codes
      // (index_factory's default), which costs minutes and does not change what a search returns.
      return cangenDriver(
        {
          key,
          label: `cangen faiss IVF${nlist},PQ${pq}np +rerank`,
          options: { kind: 'faiss', factory: `IVF${nlist},PQ${pq}np`, storeVectors: true },
          note:
            `kind 'faiss' IVF${nlist},PQ${pq}np with stored vectors: the ivf-pq index without polysemous training ` +
            '(which only slows training); k x rerank candidates re-scored exactly',
        },
        threads,
        metric,
      );
    case 'hnswlib':
      return hnswlibDriver(m, efConstruction, metric);
    case 'usearch':
      return usearchDriver(m, efConstruction, threads, metric, collect);
  }
}

// Goals printed as PASS/MISS.
const goals = {
  speed: { recall: 0.95, speedup: 1.5 },
  memory: { recall: 0.9, fractionOfBestPeer: 0.5, kinds: ['ivf-pq', 'ivf-pq-d'] as KindKey[] },
};

// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  threads: number;
  sizes: Array<{ n: number; dim: number }>;
  kinds: KindKey[];
  plan: Plan;
  out: string;
  replot: string | undefined;
}

interface Point {
  param: string;
  efSearch?: number;
  nprobe?: number;
  rerank?: number;
  /** Batch 1, one thread. */
  single?: { queries: number; qps: number; p50Ms: number; p99Ms: number; recall: number };
  /** Batch 256, all threads the engine can use. */
  batched?: { queries: number; threads: number; qps: number; recall: number };
  error?: string;
}

interface IndexResult {
  n: number;
  dim: number;
  key: KindKey;
  label: string;
  ours: boolean;
  buildThreads: number;
  status: 'ok' | 'error';
  trainS?: number;
  addS?: number;
  buildS?: number;
  memory?: MemoryEstimate;
  rssBytesPerAd?: number;
  points: Point[];
  note?: string;
  error?: string;
}

interface Goal {
  goal: string;
  value: string;
  result: 'PASS' | 'MISS' | 'N/A' | 'INFO';
}

function parseArgs(argv: string[]): Options {
  const known = ['--quick', '--threads', '--sizes', '--kinds', '--out', '--replot', '--record', '--help'];
  const values = readFlags(argv, known, __filename);
  const quick = values.has('--quick');
  const sizes = values.has('--sizes')
    ? values
        .get('--sizes')!
        .split(',')
        .map((s) => {
          const [n, dim] = s.split('x');
          const d = dim === undefined ? 96 : parseCount(dim, '--sizes');
          if (d % 2 !== 0) throw new Error(`Expected an even dimension (PQ uses dim / 2 bytes) for --sizes but received ${s}`);
          return { n: parseCount(n!, '--sizes'), dim: d };
        })
    : quick
      ? trials.quickSizes
      : trials.sizes;
  const chosen = values.has('--kinds') ? values.get('--kinds')!.split(',') : [...kindKeys];
  for (const key of chosen) {
    if (!(kindKeys as readonly string[]).includes(key)) throw new Error(`Unknown kind ${key}; expected some of ${kindKeys.join(', ')}`);
  }
  const threads = values.has('--threads') ? parseCount(values.get('--threads')!, '--threads') : os.availableParallelism();
  return {
    quick,
    threads,
    sizes,
    // The exact index always runs: it is the ground truth.
    kinds: kindKeys.filter((key) => key === 'flat' || chosen.includes(key)),
    plan: quick ? trials.plans.quick : trials.plans.full,
    out: values.get('--out') ?? join(resultsDir(values.has('--record')), `ann-${new Date().toISOString().slice(0, 10)}${values.has('--quick') ? '-quick' : ''}.json`),
    replot: values.get('--replot'),
  };
}

/** Runs the GC (exposed at runtime) so that a freed index goes before the next build. */
const collect: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  return () => {
    gc?.();
    gc?.();
  };
})();

const started = performance.now();
const elapsed = () => {
  const s = Math.round((performance.now() - started) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
function log(message: string) {
  process.stderr.write(`[${elapsed()}] ${message}\n`);
}

const fmt = {
  count: (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n)),
  qps: (x: number | undefined) => (x === undefined ? '-' : x.toLocaleString('en-US', { maximumFractionDigits: x < 100 ? 1 : 0 })),
  ms: (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)),
  s: (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1)),
};

/** The useful tail of a FAISS message ("Error: '!params' failed: ..."), at most 90 characters. */
function shortError(message: string): string {
  const tail = message.includes(' Error: ') ? message.slice(message.lastIndexOf(' Error: ') + 8) : message;
  return tail.length > 90 ? `${tail.slice(0, 87)}...` : tail;
}

/** Fraction of the true top-k found, over `rows` queries. */
function recallAt(found: BigInt64Array, truth: BigInt64Array, rows: number, k: number, truthOffsetRows = 0): number {
  let hits = 0;
  for (let i = 0; i < rows; i++) {
    const t = new Set<bigint>();
    for (let j = 0; j < k; j++) t.add(truth[(truthOffsetRows + i) * k + j]!);
    for (let j = 0; j < k; j++) if (t.has(found[i * k + j]!)) hits++;
  }
  return hits / (rows * k);
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Before a driver's first timed point: single queries until `trials.warmUp` calls or milliseconds,
 * untimed, the same for every engine. A JavaScript wrapper runs interpreted, then JIT-compiled:
 * cangen's first ~2,000 searches averaged 2.5x the steady state (81 against 30-33 us at 100k x
 * 128), which a service pays once per process but which decided the first two 500-query points.
 */
async function warmUp(driver: AnnDriver, point: SweepPoint, singles: Float32Array[], k: number): Promise<void> {
  await driver.prepare(point);
  const start = performance.now();
  for (let i = 0; i < trials.warmUp.calls && performance.now() - start < trials.warmUp.ms; i++) {
    await driver.search(singles[i % singles.length]!, 1, k, 1, point);
  }
}

async function measurePoint(
  driver: AnnDriver,
  point: SweepPoint,
  singles: Float32Array[],
  batches: Float32Array[],
  truth: BigInt64Array | undefined,
  plan: Plan,
  k: number,
): Promise<{ p: Point; truthOut: BigInt64Array }> {
  const p: Point = { param: point.label, efSearch: point.efSearch, nprobe: point.nprobe, rerank: point.rerank };
  await driver.prepare(point);
  // Batched first: for the exact index it produces the ground truth of every query.
  const batch = trials.batch;
  const found = new BigInt64Array(batches.length * batch * k);
  // Warm-up: a few single queries (caches, lazily built tables), not timed.
  for (let i = 0; i < Math.min(5, singles.length); i++) await driver.search(singles[i]!, 1, k, 1, point);
  let spent = 0;
  let done = 0;
  for (const b of batches) {
    const t0 = performance.now();
    const ids = await driver.search(b, batch, k, driver.batchThreads, point);
    spent += performance.now() - t0;
    found.set(ids, done * k);
    done += batch;
    // The exact run is the ground truth of every query: it never stops early.
    if (truth && spent > plan.batchBudgetMs) break;
  }
  const truthOut = truth ?? found.slice(0, done * k);
  p.batched = {
    queries: done,
    threads: driver.batchThreads,
    qps: (done * 1000) / spent,
    recall: recallAt(found, truthOut, Math.min(done, truthOut.length / k), k),
  };
  const times: number[] = [];
  const single = new BigInt64Array(singles.length * k);
  let total = 0;
  for (let i = 0; i < singles.length; i++) {
    const t0 = performance.now();
    const ids = await driver.search(singles[i]!, 1, k, 1, point);
    const t = performance.now() - t0;
    times.push(t);
    total += t;
    single.set(ids, i * k);
    if (total > plan.singleBudgetMs && i + 1 >= plan.minSingle) break;
  }
  p.single = {
    queries: times.length,
    qps: (times.length * 1000) / total,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    recall: recallAt(single, truthOut, times.length, k),
  };
  return { p, truthOut };
}

async function runCorpus(n: number, dim: number, o: Options, results: IndexResult[], checkpoint: () => void) {
  const k = trials.k;
  const plan = o.plan;
  let t0 = performance.now();
  const data: Dataset = { vectors: mixtureMatrix(n, dim, 'corpus'), n, dim };
  const pool = mixtureMatrix(plan.batchedQueries, dim, 'queries');
  log(`== ${fmt.count(n)} x ${dim}: data generated in ${((performance.now() - t0) / 1000).toFixed(1)} s (nlist ${nlistFor(n)})`);
  // Every query in a buffer of its own (usearch ignores byteOffset).
  const singles = Array.from({ length: plan.singleQueries }, (_, i) => pool.slice(i * dim, (i + 1) * dim));
  const batches = Array.from({ length: plan.batchedQueries / trials.batch }, (_, b) =>
    pool.slice(b * trials.batch * dim, (b + 1) * trials.batch * dim),
  );
  let truth: BigInt64Array | undefined;
  for (const key of o.kinds) {
    const driver = createDriver(key, n, dim, o.threads, collect);
    const sweep = sweepFor(key, plan, nlistFor(n));
    const r: IndexResult = {
      n,
      dim,
      key,
      label: driver.label,
      ours: driver.ours,
      buildThreads: driver.buildThreads,
      status: 'ok',
      points: [],
      note: driver.note,
    };
    results.push(r);
    try {
      collect();
      const rssBefore = process.memoryUsage().rss;
      log(`${driver.label}: building (${driver.buildThreads} thread${driver.buildThreads === 1 ? '' : 's'})...`);
      t0 = performance.now();
      const { trainMs, addMs } = await driver.build(data);
      r.trainS = trainMs / 1000;
      r.addS = addMs / 1000;
      r.buildS = (performance.now() - t0) / 1000;
      collect();
      r.rssBytesPerAd = (process.memoryUsage().rss - rssBefore) / n;
      r.memory = await driver.memory();
      log(
        `${driver.label}: built in ${fmt.s(r.buildS)} s (train ${fmt.s(r.trainS)} s), ${r.memory.bytesPerAd.toFixed(0)} B/ad ` +
          `(RSS delta ${r.rssBytesPerAd.toFixed(0)} B/ad); sweeping ${sweep.length} point${sweep.length === 1 ? '' : 's'}`,
      );
      if (sweep.length > 0) await warmUp(driver, sweep[0]!, singles, k);
      for (const point of sweep) {
        try {
          const { p, truthOut } = await measurePoint(driver, point, singles, batches, truth, plan, k);
          if (key === 'flat') truth = truthOut;
          r.points.push(p);
          log(
            `  ${driver.label} ${point.label}: recall ${p.batched!.recall.toFixed(3)}, ` +
              `batch 1 ${fmt.qps(p.single!.qps)} QPS (p50 ${fmt.ms(p.single!.p50Ms)} ms), ` +
              `batch ${trials.batch} ${fmt.qps(p.batched!.qps)} QPS`,
          );
          if (p.batched!.recall >= trials.stopAtRecall && key !== 'flat') break;
        } catch (error) {
          const message = (error as Error).message.split('\n')[0]!;
          r.points.push({ param: point.label, error: shortError(message) });
          log(`  ${driver.label} ${point.label}: error: ${message}`);
        }
      }
    } catch (error) {
      r.status = 'error';
      r.error = shortError((error as Error).message.split('\n')[0]!);
      log(`${driver.label}: error: ${r.error}`);
      if (key === 'flat') throw error; // no ground truth, nothing else can be scored
    } finally {
      await driver.free().catch((error: Error) => log(`${driver.label}: free failed: ${error.message}`));
      collect();
      checkpoint();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Goals, tables, files
// ---------------------------------------------------------------------------------------------

function bestAt(results: IndexResult[], mode: 'single' | 'batched', recall: number) {
  let best: { r: IndexResult; p: Point; qps: number } | undefined;
  for (const r of results) {
    for (const p of r.points) {
      const m = p[mode];
      if (m && m.recall >= recall && (best === undefined || m.qps > best.qps)) best = { r, p, qps: m.qps };
    }
  }
  return best;
}

function evaluateGoals(results: IndexResult[], sizes: Array<{ n: number; dim: number }>): Goal[] {
  const out: Goal[] = [];
  const { recall, speedup } = goals.speed;
  for (const { n, dim } of sizes) {
    const corpus = `${fmt.count(n)} x ${dim}`;
    const here = results.filter((r) => r.n === n && r.dim === dim && r.status === 'ok');
    const ours = here.filter((r) => r.ours && r.key !== 'flat');
    const peers = here.filter((r) => !r.ours);
    for (const mode of ['single', 'batched'] as const) {
      const o = bestAt(ours, mode, recall);
      const p = bestAt(peers, mode, recall);
      const what = mode === 'single' ? 'batch 1, one thread' : `batch ${trials.batch}, all threads (hnswlib-node: 1)`;
      const goal = `${corpus}, ${what}: at recall@10 >= ${recall}, our best QPS >= ${speedup}x the best peer's`;
      if (!o || !p) {
        out.push({ goal, value: `not measured (ours ${o ? 'ok' : 'none'}, peers ${p ? 'ok' : 'none'} at that recall)`, result: 'N/A' });
        continue;
      }
      const ratio = o.qps / p.qps;
      out.push({
        goal,
        value:
          `${ratio.toFixed(2)}x: ${o.r.label} ${o.p.param} ${fmt.qps(o.qps)} QPS (recall ${o.p[mode]!.recall.toFixed(3)}) vs ` +
          `${p.r.label} ${p.p.param} ${fmt.qps(p.qps)} QPS (recall ${p.p[mode]!.recall.toFixed(3)})`,
        // The goal is stated at batch 1; the batched line says what batching gives.
        result: mode === 'single' ? (ratio >= speedup ? 'PASS' : 'MISS') : 'INFO',
      });
    }
    const m = goals.memory;
    const peerBytes = peers.filter((r) => r.memory).sort((a, b) => a.memory!.bytesPerAd - b.memory!.bytesPerAd)[0];
    const goal = `${corpus}: IVF-PQ (codes only) at recall@10 >= ${m.recall} uses <= ${m.fractionOfBestPeer}x the best peer's bytes per ad`;
    const codesOnly = here.filter((r) => m.kinds.includes(r.key) && r.memory);
    if (codesOnly.length === 0 || !peerBytes) {
      out.push({ goal, value: 'not measured in this run', result: 'N/A' });
    } else {
      // Each codes-only IVF-PQ row, smallest first; the goal passes when one of them does.
      const candidates = codesOnly
        .sort((a, b) => a.memory!.bytesPerAd - b.memory!.bytesPerAd)
        .map((pq) => {
          const reached = pq.points.find((p) => p.batched && p.batched.recall >= m.recall);
          const bestRecall = Math.max(0, ...pq.points.map((p) => p.batched?.recall ?? 0));
          const ratio = pq.memory!.bytesPerAd / peerBytes.memory!.bytesPerAd;
          const text =
            `${pq.label} ${pq.memory!.bytesPerAd.toFixed(0)} B/ad = ${ratio.toFixed(2)}x, ` +
            (reached
              ? `recall ${reached.batched!.recall.toFixed(3)} at ${reached.param} (${fmt.qps(reached.single?.qps)} QPS batch 1)`
              : `recall ${m.recall} not reached (best ${bestRecall.toFixed(3)})`);
          return { pass: reached !== undefined && ratio <= m.fractionOfBestPeer, text };
        });
      out.push({
        goal,
        value: `best peer ${peerBytes.label} ${peerBytes.memory!.bytesPerAd.toFixed(0)} B/ad (layout estimate); ${candidates.map((c) => c.text).join('; ')}`,
        result: candidates.some((c) => c.pass) ? 'PASS' : 'MISS',
      });
      const rr = here.find((r) => r.key === 'ivf-pq-rerank');
      if (rr?.memory) {
        const hit = rr.points.find((p) => p.batched && p.batched.recall >= m.recall);
        out.push({
          goal: `${corpus}: IVF-PQ with stored vectors and re-ranking (for comparison)`,
          value:
            `${rr.memory.bytesPerAd.toFixed(0)} B/ad = ${(rr.memory.bytesPerAd / peerBytes.memory!.bytesPerAd).toFixed(2)}x the best peer; ` +
            (hit ? `recall ${m.recall} at ${hit.param} (${hit.batched!.recall.toFixed(3)})` : `recall ${m.recall} not reached`),
          result: 'INFO',
        });
      }
    }
  }
  return out;
}

/**
 * Sweeps whose parameter changed nothing: every point has the same recall. Seen with cangen's
 * hnsw kind on FAISS 1.7.3, whose HNSW::search sizes its candidate queue from the index's own
 * hnsw.efSearch (16 unless set) rather than the per-call SearchParametersHNSW.
 */
function sweepWarnings(results: IndexResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const recalls = r.points.filter((p) => p.batched).map((p) => p.batched!.recall);
    if (recalls.length >= 3 && recalls.every((x) => x === recalls[0]) && recalls[0]! < trials.stopAtRecall) {
      out.push(
        `${fmt.count(r.n)} x ${r.dim} ${r.label}: recall ${recalls[0]!.toFixed(3)} at every ${r.points[0]!.param.split('=')[0]} ` +
          'swept: the search parameter had no effect' +
          (r.key === 'hnsw' ? ' (FAISS 1.7.3 HNSW::search sizes its queue from hnsw.efSearch, not SearchParametersHNSW)' : ''),
      );
    }
  }
  return out;
}

function pad(rows: string[][], head: string[], right: Set<number>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.length === 0 ? '' : r.map((v, i) => (right.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One row per (index, search setting). */
function pointsTable(results: IndexResult[]): string {
  const head = ['corpus', 'index', 'param', 'recall@10', 'QPS b1', 'p50 ms', 'p99 ms', `QPS b${trials.batch}`, 'thr', 'build s', 'B/ad', 'RSS B/ad'];
  const rows: string[][] = [];
  let last = '';
  for (const r of results) {
    const corpus = `${fmt.count(r.n)} x ${r.dim}`;
    if (last && last !== `${corpus}/${r.key}`) rows.push([]);
    last = `${corpus}/${r.key}`;
    if (r.status === 'error' && r.points.length === 0) {
      rows.push([corpus, r.label, '-', '-', '-', '-', '-', '-', '-', fmt.s(r.buildS), '-', '-', `error: ${r.error}`]);
      continue;
    }
    r.points.forEach((p, i) => {
      const first = i === 0;
      rows.push([
        corpus,
        r.label,
        p.param,
        p.error ? `error: ${p.error}` : p.batched!.recall.toFixed(3),
        fmt.qps(p.single?.qps),
        fmt.ms(p.single?.p50Ms),
        fmt.ms(p.single?.p99Ms),
        fmt.qps(p.batched?.qps),
        p.batched ? String(p.batched.threads) : '-',
        first ? fmt.s(r.buildS) : '',
        first && r.memory ? r.memory.bytesPerAd.toFixed(0) : '',
        first && r.rssBytesPerAd !== undefined ? r.rssBytesPerAd.toFixed(0) : '',
      ]);
    });
  }
  return pad(rows, head, new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]));
}

/** One row per index: build, memory, best QPS at the goal recall. */
function summaryTable(results: IndexResult[]): string {
  const r95 = goals.speed.recall;
  const head = ['corpus', 'index', 'build thr', 'build s', 'train s', 'B/ad', 'memory from', `best QPS b1 @${r95}`, `best QPS b${trials.batch} @${r95}`, 'max recall'];
  const rows = results.map((r) => {
    const b1 = bestAt([r], 'single', r95);
    const bb = bestAt([r], 'batched', r95);
    const maxRecall = Math.max(0, ...r.points.map((p) => p.batched?.recall ?? 0));
    return [
      `${fmt.count(r.n)} x ${r.dim}`,
      r.label,
      String(r.buildThreads),
      fmt.s(r.buildS),
      r.trainS ? fmt.s(r.trainS) : '-',
      r.memory ? r.memory.bytesPerAd.toFixed(0) : '-',
      r.memory ? (r.ours ? 'stats()' : 'layout est.') : '-',
      b1 ? `${fmt.qps(b1.qps)} (${b1.p.param})` : '-',
      bb ? `${fmt.qps(bb.qps)} (${bb.p.param})` : '-',
      r.status === 'error' ? `error: ${r.error}` : maxRecall.toFixed(3),
    ];
  });
  return pad(rows, head, new Set([2, 3, 4, 5, 9]));
}


interface RunFile {
  complete: boolean;
  date: string;
  threads: number;
  wallSeconds: number;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; buildInfo: { version: string; faissVersion: string; faissSimd: string } };
  options: { quick: boolean; sizes: Array<{ n: number; dim: number }>; batch: number; plan: Plan; stopAtRecall: number };
  loadAverage: { before: number[]; after: number[] };
  results: IndexResult[];
  goals: Goal[];
}

/** The stdout report of a run (also printed by --replot from a JSON, partial runs included). */
function report(run: RunFile): string {
  const { machine, options: o, results } = run;
  const info = machine.buildInfo;
  const before = run.loadAverage.before[0]!;
  const after = run.loadAverage.after[0]!;
  const goalResults = run.goals.length > 0 ? run.goals : evaluateGoals(results, o.sizes);
  const out: string[] = [];
  out.push(`ANN search, recall@10 vs QPS, ${run.date.slice(0, 10)}, ${machine.cpu} (${machine.cores} cores, ${machine.memoryGiB} GiB), Node ${machine.node}`);
  out.push(
    `cangen ${info.version} (FAISS ${info.faissVersion} ${info.faissSimd}); ${run.threads} threads; L2; mixture of ` +
      `${defaultMixture.centers} Gaussians; ${o.quick ? 'quick' : 'full'} run${run.complete ? '' : ' (PARTIAL: cut short)'} took ` +
      `${(run.wallSeconds / 60).toFixed(1)} min`,
  );
  out.push(
    `Load average (1 min) ${before.toFixed(2)} before, ${after.toFixed(2)} after` +
      (Math.max(before, after) > 0.5 ? ': the machine was not idle, timings are noisy' : ''),
  );
  out.push('');
  out.push('Per index:');
  out.push(summaryTable(results));
  out.push('');
  out.push('Every point:');
  out.push(pointsTable(results));
  out.push('');
  out.push('Notes:');
  const notes = new Map(results.filter((r) => r.note).map((r) => [r.key, `${r.label}: ${r.note}`]));
  for (const note of notes.values()) out.push(`  ${note}`);
  for (const warning of sweepWarnings(results)) out.push(`  WARNING ${warning}`);
  out.push(`  recall@10 over the ${o.plan.batchedQueries} queries of the batched run, against AdIndex kind 'flat' (exact).`);
  out.push(`  QPS b1: one query per call, one thread, ${o.plan.singleQueries} queries (fewer if a point exceeds ${o.plan.singleBudgetMs / 1000} s); p50/p99 per query.`);
  out.push(`  QPS b${o.batch}: batches of ${o.batch}, thr threads. Sweeps stop once recall >= ${o.stopAtRecall}.`);
  out.push('  B/ad: ours from stats().bytesPerAd (includes the id/attribute catalog); peers estimated from their layout.');
  out.push('  RSS B/ad: process RSS growth over the build / n (a cross-check; allocator reuse makes it noisy).');
  out.push('');
  out.push('Goals:');
  for (const g of goalResults) out.push(`  ${g.result.padEnd(4)}  ${g.goal}: ${g.value}`);
  return out.join('\n');
}

/** The SVG of a run's JSON (also used by --replot). */
function plot(run: {
  date: string;
  complete: boolean;
  threads: number;
  machine: { cpu: string; cores: number };
  options: { sizes: Array<{ n: number; dim: number }>; batch: number };
  results: IndexResult[];
}): string {
  const panels: PlotPanel[] = run.options.sizes.flatMap(({ n, dim }) =>
    (['single', 'batched'] as const).map((mode) => ({
      title: `${fmt.count(n)} x ${dim}, ${mode === 'single' ? 'batch 1, 1 thread' : `batch ${run.options.batch}, ${run.threads} threads`}`,
      series: run.results
        .filter((r) => r.n === n && r.dim === dim && r.points.some((p) => p[mode]))
        .map((r) => ({
          label: r.label,
          ours: r.ours,
          points: r.points.filter((p) => p[mode]).map((p) => ({ recall: p.batched!.recall, qps: p[mode]!.qps })),
        })),
    })),
  );
  return renderSvg(
    `cangen ANN benchmark ${run.date.slice(0, 10)}${run.complete ? '' : ' (partial)'}: recall@10 vs QPS`,
    `${run.machine.cpu}, ${run.machine.cores} cores; clustered data (${defaultMixture.centers} Gaussians), L2; k=10; ` +
      'lines: Pareto frontier, peers dashed; dotted: recall 0.9 and 0.95',
    panels,
  );
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.replot) {
    // Redraw the SVG of an earlier run from its JSON.
    const svg = o.replot.replace(/\.json$/, '') + '.svg';
    const run = JSON.parse(readFileSync(o.replot, 'utf8')) as RunFile;
    writeFileSync(svg, plot(run));
    console.log(report(run));
    log(`wrote ${svg}`);
    return;
  }
  const date = new Date().toISOString().slice(0, 10);
  const loadBefore = os.loadavg();
  log(
    `cangen ANN benchmark: ${o.quick ? 'quick' : 'full'} run, ${o.threads} threads, sizes ` +
      `${o.sizes.map((s) => `${fmt.count(s.n)}x${s.dim}`).join(',')}, kinds ${o.kinds.join(',')}`,
  );
  if (loadBefore[0]! > 0.5) log(`warning: 1-minute load average is ${loadBefore[0]!.toFixed(2)}: other work will skew timings`);
  const machine = machineInfo();
  const base = o.out;
  const svgFile = base.replace(/\.json$/, '') + '.svg';
  mkdirSync(join(base, '..'), { recursive: true });
  const results: IndexResult[] = [];

  const write = (complete: boolean, goalResults: Goal[]) => {
    const loadAfter = os.loadavg();
    const data = {
      benchmark: 'ann',
      complete,
      date: new Date().toISOString(),
      machine,
      threads: o.threads,
      options: {
        quick: o.quick,
        sizes: o.sizes,
        kinds: o.kinds,
        k: trials.k,
        metric: trials.metric,
        batch: trials.batch,
        hnsw: trials.hnsw,
        plan: o.plan,
        stopAtRecall: trials.stopAtRecall,
        data: { ...defaultMixture, queries: 'same mixture, other seed; not in the corpus' },
      },
      loadAverage: { before: loadBefore, after: loadAfter },
      wallSeconds: Math.round((performance.now() - started) / 1000),
      results,
      goals: goalResults,
    };
    writeFileSync(base, `${JSON.stringify(data, null, 2)}\n`);
    writeFileSync(svgFile, plot(data));
    return data;
  };

  for (const { n, dim } of o.sizes) await runCorpus(n, dim, o, results, () => write(false, []));
  const goalResults = evaluateGoals(results, o.sizes);
  const run = write(true, goalResults);
  console.log(report(run));
  log(`wrote ${base} and ${svgFile}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
