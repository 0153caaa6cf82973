/**
 * A sizing model for a sharded corpus of 100M, 1B and 10B ads (docs/SIZING.md).
 *
 *   npm run bench:sizing -- [--quick] [--from bench/results/cluster-<date>.json] [--qps 1000]
 *                           [--p99-ms 50] [--updates 5000] [--ads 20k] [--overhead-per-shard-ms X] [--hedge-at 0.9] [--record]
 *
 * 1. Measures bytes per ad for every index kind and precision at dim 64 and 128: AdIndex.stats().bytes
 *    (the index's own count of what it allocated) and AdIndex.save's file size, each as the slope
 *    between --ads and 2 x --ads ads, so that fixed parts (centroids, headers) drop out.
 * 2. Reads the loopback benchmark's results (bench/cluster.ts: per-shard latency samples, router
 *    overhead, catch-up, snapshot and object-store rates); --from picks the file, by default the
 *    newest full cluster-*.json in bench/results/.
 * 3. Prints, per corpus size, machine and index kind: ads per shard (memory or latency bound), shards,
 *    the fan-out p99 from the order-statistics model and from a Monte-Carlo simulation over the
 *    measured samples (with and without hedging), replicas, machines, snapshot size and restore time;
 *    and a projection of the benchmark corpus on S machines beside what the loopback run measured.
 * --hedge-at Q sizes shards for the hedged p99 (a second replica asked after the shard's Q-quantile)
 * instead of the plain one; without it, hedging at the p90 is only reported. --overhead-per-shard-ms replaces the router's measured cost per shard (the line through S = 1, 2, 4
 * keeps its value at S = 1). GPU shards were not measured (no GPU here): their latency is derived from memory bandwidth and
 * marked as such. Writes results/sizing-<date>.json (bench/results/ with --record).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdIndex, type AdIndexOptions } from '../lib';
import { mixtureMatrix } from './ann/data';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';
import { printTable } from './table';
import {
  ascending, fanOutQuantile, hedgedFanOutQuantile, largestShardWithin, quantile, scaleSamples, simulateFanOut, type CostModel,
} from './sizing-model';

const flags = readFlags(process.argv.slice(2), ['--quick', '--from', '--qps', '--p99-ms', '--updates', '--ads', '--overhead-per-shard-ms', '--hedge-at', '--record', '--help'], __filename);
const quick = flags.has('--quick');
const qps = Number(flags.get('--qps') ?? 1000);
const budgetMs = Number(flags.get('--p99-ms') ?? 50);
/** Hedge at this quantile of a shard's latency (0.9: its p90); with --hedge-at, shards are also sized for the hedged p99. */
const hedgeAt = Number(flags.get('--hedge-at') ?? 0.9);
const sizeHedged = flags.has('--hedge-at');
/** Corpus updates per second (upserts), spread evenly over the shards. */
const updatesPerSecond = Number(flags.get('--updates') ?? 5000);
const measureAds = parseCount(flags.get('--ads') ?? (quick ? '5k' : '20k'), '--ads');
const corpusSizes = [1e8, 1e9, 1e10];
const q = 0.99;

// ---- Assumptions (docs/SIZING.md, "Assumptions"): change them here. ----
/** CPU shard machines: memory, cores, and sustained read bandwidth with every core scanning. */
const cpuMachines = [
  { name: 'CPU 64 GiB', memGiB: 64, cores: 16, bandwidthGBs: 60 },
  { name: 'CPU 128 GiB', memGiB: 128, cores: 32, bandwidthGBs: 120 },
  { name: 'CPU 256 GiB', memGiB: 256, cores: 64, bandwidthGBs: 240 },
  { name: 'CPU 512 GiB', memGiB: 512, cores: 64, bandwidthGBs: 240 },
];
/** GPU shard machines (kind flat, fp32 copy on the device): HBM, its bandwidth. Never measured here. */
const gpuMachines = [
  { name: 'H100 80 GB', memGiB: 80, bandwidthGBs: 3350 },
  { name: 'H200 141 GB', memGiB: 141, bandwidthGBs: 4800 },
];
/** Fraction of a machine's memory the index may use (the rest: OS, Node, compaction, a snapshot load beside the serving index). */
const cpuMemoryUse = 0.6;
const gpuMemoryUse = 0.85;
/** Target utilisation of a replica's cores: queueing delay stays small below it. */
const utilisation = 0.6;
/** GPU: fraction of HBM bandwidth a scan reaches, fixed cost per search (launch, copies, top-k, N-API), queries per scan. */
const gpu = { efficiency: 0.6, fixedMs: 0.3, batch: 32 };
/** Replicas per shard at least (availability: one may be down or restarting). */
const minReplicas = 2;
/** How often a shard is snapshotted (the lead's --snapshot-every-s default). */
const snapshotEverySeconds = 300;
const simulationTrials = quick ? 5000 : 20_000;

interface KindCase { label: string; options: Omit<AdIndexOptions, 'dim'>; samplesFrom: string; cost: CostModel }
const kindCases: KindCase[] = [
  { label: 'flat fp32', options: { kind: 'flat' }, samplesFrom: 'flat fp32', cost: 'linear' },
  { label: 'flat bf16', options: { kind: 'flat', precision: 'bf16' }, samplesFrom: 'flat bf16', cost: 'linear' },
  { label: 'flat int8', options: { kind: 'flat', precision: 'int8' }, samplesFrom: 'flat int8', cost: 'linear' },
  { label: 'hnsw', options: { kind: 'hnsw' }, samplesFrom: 'hnsw', cost: 'log' },
  { label: 'ivf-flat', options: { kind: 'ivf-flat' }, samplesFrom: 'ivf-flat', cost: 'sqrt' },
  { label: 'ivf-sq8', options: { kind: 'ivf-sq8' }, samplesFrom: 'ivf-sq8', cost: 'sqrt' },
  { label: 'ivf-sq8 codes only', options: { kind: 'ivf-sq8', storeVectors: false }, samplesFrom: 'ivf-sq8', cost: 'sqrt' },
  { label: 'ivf-pq', options: { kind: 'ivf-pq' }, samplesFrom: 'ivf-pq', cost: 'sqrt' },
  { label: 'ivf-pq codes only', options: { kind: 'ivf-pq', storeVectors: false }, samplesFrom: 'ivf-pq', cost: 'sqrt' },
];
/** The kinds the corpus-size tables show on CPU shards (all kinds' bytes are in the JSON). */
const sizedKinds = ['flat int8', 'hnsw', 'ivf-sq8 codes only', 'ivf-pq codes only'];

interface BytesPerAd { label: string; dim: number; memory: number; file: number; vector: number }

/** Slope of memory and file bytes between n and 2n ads (the same nlist for both, so centroids cancel). */
async function measureBytes(dir: string): Promise<BytesPerAd[]> {
  const out: BytesPerAd[] = [];
  for (const dim of [64, 128]) {
    const vectors = mixtureMatrix(2 * measureAds, dim, 'corpus');
    for (const c of kindCases) {
      const at = async (n: number) => {
        const index = new AdIndex({ dim, metric: 'l2', nlist: 64, ...c.options });
        if (index.kind.startsWith('ivf')) await index.train(vectors.subarray(0, measureAds * dim));
        await index.upsert(BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)), vectors.subarray(0, n * dim));
        const stats = await index.stats();
        const file = join(dir, 'bytes.idx');
        await index.save(file);
        const fileBytes = statSync(file).size;
        rmSync(file);
        index.close();
        return { memory: stats.bytes, file: fileBytes, vector: stats.vectorBytes };
      };
      const [one, two] = [await at(measureAds), await at(2 * measureAds)];
      out.push({ label: c.label, dim, memory: (two.memory - one.memory) / measureAds, file: (two.file - one.file) / measureAds, vector: (two.vector - one.vector) / measureAds });
      console.error(`bytes per ad: ${c.label}, dim ${dim}: ${out[out.length - 1]!.memory.toFixed(1)} in memory`);
    }
  }
  return out;
}

// ---- The loopback benchmark's results ----
interface Summary { p50Ms: number; p99Ms: number; perSecond: number }
interface ClusterResults {
  date: string;
  machine: { cpu: string; cores: number; node: string };
  ads: number;
  k: number;
  quick: boolean;
  loadBefore: number[];
  search: {
    local: { concurrency1: Summary; concurrencyN: Summary };
    runs: Array<{ shards: number; routerOverheadConcurrency1: Summary; routerConcurrency1: Summary; routerConcurrencyN: Summary; perShard: Array<Summary & { ads: number }>; overheadSamplesConcurrency1: number[]; catchUp: { seconds: number } }>;
    shardSamples: Record<string, number[]>;
  };
  log: { inFlight16: { ackedUpdatesPerSecond: number }; catchUp: { updatesPerSecond: number } };
  snapshots: {
    kinds: Array<{ label: string; ads: number; buildSeconds: number; fileBytesPerAd: number; loadSecondsPerMillion: number; recallAtK?: number; nprobe?: number; nlist?: number; efSearch?: number; latencySamples: number[] }>;
    objectStore: { runs: Array<{ getMiBPerSecond: number; putMiBPerSecond: number }> };
  };
}

function newestClusterResults(): string {
  const dir = join(__dirname, 'results');
  const files = readdirSync(dir).filter((f) => /^cluster-\d{4}-\d{2}-\d{2}(-[\w-]+)?\.json$/.test(f) && !f.includes('quick')).sort();
  if (files.length === 0) throw new Error(`Expected a bench/results/cluster-<date>.json from a full run of bench/cluster.ts (npm run bench:cluster -- --record), or --from FILE`);
  return join(dir, files[files.length - 1]!);
}

/** Least-squares line through (x, y). */
function fitLine(points: [number, number][]): { a: number; b: number } {
  // (a: intercept, b: slope)
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / sxx;
  return { a: my - b * mx, b };
}

const round = (x: number, digits = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);
function mean(xs: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i]!;
  return sum / xs.length;
}
const human = (n: number) => (n >= 1e9 ? `${round(n / 1e9, 2)}B` : n >= 1e6 ? `${round(n / 1e6, 1)}M` : n >= 1e3 ? `${round(n / 1e3, 1)}k` : String(Math.round(n)));


async function main() {
  const from = flags.get('--from') ?? newestClusterResults();
  const cluster = JSON.parse(readFileSync(from, 'utf8')) as ClusterResults;
  const dir = mkdtempSync(join(tmpdir(), 'cangen-sizing-'));
  let bytes: BytesPerAd[];
  try {
    bytes = await measureBytes(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const bytesOf = (label: string, dim = 64) => bytes.find((b) => b.label === label && b.dim === dim)!;
  printTable('1. bytes per ad (slope between n and 2n ads; memory = AdIndex.stats().bytes, file = AdIndex.save)', ['kind', 'dim', 'memory', 'file', 'of which vectors'],
    bytes.map((b) => [b.label, b.dim, round(b.memory), round(b.file), round(b.vector)]), 1);

  // Ads one machine's memory holds per kind (dim 64 and 128), before any latency bound.
  const capacity = [64, 128].flatMap((dim) => [
    ...kindCases.map((c) => ({ dim, kind: c.label, ...Object.fromEntries(cpuMachines.map((m) => [m.name, (cpuMemoryUse * m.memGiB * 2 ** 30) / bytesOf(c.label, dim).memory])) })),
    { dim, kind: 'flat fp32 on the GPU', ...Object.fromEntries(gpuMachines.map((m) => [m.name, (gpuMemoryUse * m.memGiB * 2 ** 30) / bytesOf('flat fp32', dim).vector])) },
  ]) as Array<Record<string, number | string>>;
  const capacityColumns = [...cpuMachines, ...gpuMachines].map((m) => m.name);
  printTable(`1b. ads per shard that fit in memory (${cpuMemoryUse * 100}% of a CPU machine's memory, ${gpuMemoryUse * 100}% of a GPU's; GPU: the fp32 vectors on the device)`,
    ['kind', 'dim', ...capacityColumns], capacity.map((r) => [r.kind as string, r.dim as number, ...capacityColumns.map((name) => (r[name] === undefined ? '-' : human(r[name] as number)))]), 1);

  // Router overhead: p50 at concurrency 1 on shards of a few hundred ads, a line in S; its samples at the largest S measured, shifted along that line.
  const runs = cluster.search.runs;
  // Measured in one process, the slope includes the replicas' own message handling, which shares
  // the router's thread there and runs on the shards' machines in a deployment: an upper bound.
  const fitted = fitLine(runs.map((r) => [r.shards, r.routerOverheadConcurrency1.p50Ms]));
  // A negative slope is noise (three points): the cost of a shard is not below zero; then the mean is the line.
  if (fitted.b < 0) Object.assign(fitted, { a: runs.reduce((sum, r) => sum + r.routerOverheadConcurrency1.p50Ms, 0) / runs.length, b: 0 });
  const overheadLine = flags.has('--overhead-per-shard-ms') ? { a: fitted.a + fitted.b - Number(flags.get('--overhead-per-shard-ms')), b: Number(flags.get('--overhead-per-shard-ms')) } : fitted;
  const lastRun = runs[runs.length - 1]!;
  const overheadSamples = ascending(lastRun.overheadSamplesConcurrency1);
  const overheadAt = (shards: number) => overheadLine.a + overheadLine.b * shards;
  const overheadSamplesAt = (shards: number) => Float64Array.from(overheadSamples, (x) => Math.max(0, x + overheadAt(shards) - overheadAt(lastRun.shards)));

  // 2a. What S machines would serve, for the benchmark's own corpus, beside what loopback measured.
  const projection = runs.map((r) => {
    const shardAds = Math.round(cluster.ads / r.shards);
    const key = r.shards === 1 ? String(cluster.ads) : String(r.perShard[0]!.ads);
    const samples = ascending(cluster.search.shardSamples[key] ?? []);
    const cores = cluster.machine.cores;
    return {
      shards: r.shards, shardAds,
      modelP50Ms: overheadAt(r.shards) + fanOutQuantile(samples, r.shards, 0.5), modelP99Ms: overheadAt(r.shards) + fanOutQuantile(samples, r.shards, q),
      modelMaxPerSecond: cores / mean(samples) * 1000,
      loopbackP50Ms: r.routerConcurrency1.p50Ms, loopbackP99Ms: r.routerConcurrency1.p99Ms, loopbackPerSecond: r.routerConcurrencyN.perSecond,
    };
  });
  printTable(`2. the benchmark corpus (${human(cluster.ads)} x 64, flat exact) on S machines of ${cluster.machine.cores} cores, one shard each (model), beside loopback (measured, all on one machine)`,
    ['S', 'ads/shard', 'model p50 ms', 'model p99 ms', 'model req/s (saturated)', 'loopback p50 ms', 'loopback p99 ms', 'loopback req/s'],
    projection.map((p) => [p.shards, human(p.shardAds), round(p.modelP50Ms, 2), round(p.modelP99Ms, 2), Math.round(p.modelMaxPerSecond), round(p.loopbackP50Ms, 2), round(p.loopbackP99Ms, 2), Math.round(p.loopbackPerSecond)]));

  // 3. Corpus sizes.
  const objectStoreGet = Math.max(...cluster.snapshots.objectStore.runs.map((r) => r.getMiBPerSecond)) * 2 ** 20;
    const rows: Record<string, unknown>[] = [];
  for (const total of corpusSizes) {
    for (const machine of [...cpuMachines.map((m) => ({ ...m, gpu: false })), ...gpuMachines.map((m) => ({ ...m, cores: 0, gpu: true }))]) {
      for (const label of machine.gpu ? ['flat fp32'] : sizedKinds) {
        const c = kindCases.find((x) => x.label === label)!;
        const measured = cluster.snapshots.kinds.find((s) => s.label === c.samplesFrom)!;
        const base = ascending(measured.latencySamples);
        const b = bytesOf(label);
        const deviceBytesPerAd = b.vector;
        const memAds = machine.gpu ? (gpuMemoryUse * machine.memGiB * 2 ** 30) / deviceBytesPerAd : (cpuMemoryUse * machine.memGiB * 2 ** 30) / b.memory;
        // CPU flat scans stream memory: with every core busy each gets bandwidth / cores, which
        // can be slower than the single scan measured here; a loaded scan takes at least its
        // bytes over that share (both grow linearly in ads, so the factor is one per kind and machine).
        const scanBytesPerAd = { 'flat fp32': 4 * 64, 'flat bf16': 2 * 64, 'flat int8': 64 + 8 }[label as 'flat fp32'] ?? 0;
        const loadedFloorMs = (measured.ads * scanBytesPerAd) / ((machine.bandwidthGBs * 1e9) / Math.max(1, machine.cores)) * 1000;
        const loadFactor = machine.gpu ? 1 : Math.max(1, loadedFloorMs / quantile(base, 0.5));
        // GPU (unmeasured): one pass over the fp32 copy at `efficiency` x HBM bandwidth plus a fixed cost.
        const gpuPassMs = (n: number) => gpu.fixedMs + (n * deviceBytesPerAd) / (gpu.efficiency * machine.bandwidthGBs * 1e9) * 1000;
        const samplesAt = (n: number) => {
          if (!machine.gpu) return scaleSamples(base, c.cost, measured.ads, n).map((x) => x * loadFactor);
          // The CPU scan's distribution shape at the GPU's time; waiting for the running batch adds up to one pass (1.5 passes on average).
          const median = quantile(base, 0.5);
          return Float64Array.from(base, (x) => (x / median) * gpuPassMs(n) * 1.5);
        };
        const shardsFor = (n: number) => Math.ceil(total / n);
        const p99At = (n: number) => {
          const at = samplesAt(n);
          return sizeHedged ? hedgedFanOutQuantile(at, shardsFor(n), q, quantile(at, hedgeAt), overheadAt(shardsFor(n))) : overheadAt(shardsFor(n)) + fanOutQuantile(at, shardsFor(n), q);
        };
        // At most 65,536 shards (the shard map's limit).
        const latencyAds = largestShardWithin(budgetMs, Math.floor(memAds), p99At, total / 65536);
        if (latencyAds === 0) {
          rows.push({ total, machine: machine.name, kind: label, feasible: false });
          continue;
        }
        const shards = shardsFor(latencyAds);
        const n = total / shards;
        const samples = samplesAt(n);
        const hedgeMs = quantile(samples, hedgeAt);
        const overhead = overheadAt(shards);
        const model = overhead + fanOutQuantile(samples, shards, q);
        // The simulation with the model's constant overhead checks the formula; with the measured
        // overhead samples it adds the router's own variability, which the formula leaves out.
        const simulate = (hedge: number, overheadMs: number | Float64Array, seed: number) =>
          quantile(simulateFanOut(samples, { shards, trials: simulationTrials, hedgeMs: hedge, overheadMs, seed }), q);
        const simulated = simulate(0, overhead, 7);
        const simulatedWithOverhead = simulate(0, overheadSamplesAt(shards), 8);
        const hedgedModel = hedgedFanOutQuantile(samples, shards, q, hedgeMs, overhead);
        const hedgedSimulated = simulate(hedgeMs, overhead, 9);
        const hedgedSimulatedWithOverhead = simulate(hedgeMs, overheadSamplesAt(shards), 10);
        // Capacity: CPU, one core per search at `utilisation`; GPU, `batch` queries per pass.
        // A GPU scan uses the whole device's bandwidth: one shard per GPU.
        const shardsPerMachine = machine.gpu ? 1 : Math.max(1, Math.floor(memAds / n));
        const machinesForLoad = machine.gpu
          ? Math.ceil((qps * shards * gpuPassMs(n)) / (1000 * gpu.batch * utilisation))
          : Math.ceil((qps * shards * mean(samples)) / (1000 * machine.cores * utilisation));
        // A shard's replicas sit on different machines; a machine holds up to shardsPerMachine shard replicas.
        const machines = Math.max(machinesForLoad, minReplicas, Math.ceil((shards * minReplicas) / shardsPerMachine));
        const replicas = Math.min(machines, Math.max(minReplicas, Math.floor((machines * shardsPerMachine) / shards)));
        // Restore: get the snapshot from the object store, load it, replay what was logged since it.
        const snapshotBytes = n * bytesOf(label).file;
        const replayAdsPerSecond = Math.min(cluster.log.catchUp.updatesPerSecond, measured.ads / measured.buildSeconds);
        const restoreSeconds = snapshotBytes / objectStoreGet + (n / 1e6) * measured.loadSecondsPerMillion + (snapshotEverySeconds * updatesPerSecond) / shards / replayAdsPerSecond;
        rows.push({
          total, machine: machine.name, kind: label, feasible: true, bytesPerAd: machine.gpu ? deviceBytesPerAd : b.memory, bound: memAds >= total && shards === 1 ? 'one shard' : latencyAds < Math.floor(memAds) ? 'latency' : 'memory',
          adsPerShard: n, shards, shardP99Ms: quantile(samples, q), overheadMs: overhead, modelP99Ms: model, simulatedP99Ms: simulated, simulatedWithOverheadP99Ms: simulatedWithOverhead, hedgeAfterMs: hedgeMs,
          hedgedModelP99Ms: hedgedModel, hedgedSimulatedP99Ms: hedgedSimulated, hedgedSimulatedWithOverheadP99Ms: hedgedSimulatedWithOverhead, replicas, machines, shardsPerMachine, snapshotGiB: snapshotBytes / 2 ** 30,
          restoreSeconds, fullReplaySeconds: n / replayAdsPerSecond, recallAtK: machine.gpu ? undefined : measured.recallAtK, measured: !machine.gpu, loadFactor,
          hostMemoryGiB: machine.gpu ? (n * bytesOf('flat fp32').memory) / 2 ** 30 / gpuMemoryUse : undefined,
        });
      }
    }
  }
  for (const total of corpusSizes) {
    printTable(`3. ${human(total)} ads x 64, k=${cluster.k}, ${qps} req/s, ${sizeHedged ? 'hedged ' : ''}p99 budget ${budgetMs} ms (GPU rows: unmeasured, from HBM bandwidth)`,
      ['machine', 'kind', 'recall', 'B/ad', 'ads/shard', 'bound', 'S', 'shard p99', 'p99 model', 'sim', 'sim+ovh', 'hedged model', 'sim', 'sim+ovh', 'replicas', 'machines', 'snapshot GiB', 'restore s'],
      rows.filter((r) => r.total === total).map((r) => r.feasible
        ? [r.machine as string, r.kind as string, r.recallAtK === undefined ? 'exact' : round(r.recallAtK as number, 2), round(r.bytesPerAd as number, 0), human(r.adsPerShard as number), r.bound as string, r.shards as number, round(r.shardP99Ms as number, 2),
          round(r.modelP99Ms as number, 2), round(r.simulatedP99Ms as number, 2), round(r.simulatedWithOverheadP99Ms as number, 2),
          round(r.hedgedModelP99Ms as number, 2), round(r.hedgedSimulatedP99Ms as number, 2), round(r.hedgedSimulatedWithOverheadP99Ms as number, 2), r.replicas as number,
          r.machines as number, round(r.snapshotGiB as number, 1), round(r.restoreSeconds as number, 0)]
          : [r.machine as string, r.kind as string, '-', '-', '-', `no shard meets ${budgetMs} ms`, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-']), 2);
  }

  const result = {
    benchmark: 'sizing', date: new Date().toISOString().slice(0, 10), machine: machineInfo(), from, fromDate: cluster.date, fromMachine: cluster.machine,
    qps, budgetMs, quantile: q, updatesPerSecond, measureAds, hedgeAt, sizeHedged,
    assumptions: { cpuMachines, gpuMachines, cpuMemoryUse, gpuMemoryUse, utilisation, gpu, minReplicas, snapshotEverySeconds, overheadLine, simulationTrials },
    bytes, capacity, projection, rows,
  };
  const out = resultsDir(flags.has('--record'));
  mkdirSync(out, { recursive: true });
  const file = join(out, `sizing-${result.date}${quick ? '-quick' : ''}${sizeHedged ? '-hedged' : ''}.json`);
  writeFileSync(file, JSON.stringify(result, null, 1));
  console.error(`\nmodel inputs from ${from}; wrote ${file}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
