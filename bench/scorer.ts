/**
 * Learned-scorer throughput: cangen's fused scan (top-k kept during the scan) side by side with its
 * own unfused path (every score stored, then selected), its bf16 scan (precision 'bf16': a bf16
 * scan, then k x rerankFactor candidates per user re-scored in fp32) and PyTorch eager on the CPU
 * (Debian's python3-torch under /usr/bin/python3, same model files, same data, same thread count).
 *
 *   npx tsx bench/scorer.ts [--quick] [--threads N] [--ads N] [--out FILE] [--record]
 *
 * "ads/s" counts (user, ad) pairs scored per second: ads x users / time. The ceiling fraction is
 * that rate times the model's FLOPs per pair over the machine's ceiling for the row's precision
 * (measureCeilings: fp32 FMA, or register-resident VDPBF16PS for bf16 rows). "recall" is the
 * bf16 scan's top-k against the fp32 fused scan's, over every user of the batch; "bytes/ad" the
 * scorer's per-ad planes (info().bytesPerAd: fp32, plus the bf16 copy).
 * Prints a table; writes results/scorer-<date>.json (with --record: bench/results/, the figures the
 * repository publishes).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildInfo, LearnedScorer, measureCeilings } from '../lib';
import { randomVectors, sequentialIds } from '../test/helpers/random';
import { randomTensors, writeModel, type Config } from '../test/helpers/scorer-model';
import { resultsDir } from './flags';

const trials = {
  ads: 1_000_000,
  quickAds: 200_000,
  batches: [1, 16],
  k: 100,
  reps: { ours: 3, unfused: 2, torch: 2 },
  quickReps: { ours: 2, unfused: 1, torch: 1 },
  models: {
    'MLP 64-d, 256-128-1': { kind: 'mlp', userDim: 64, itemDim: 64, heads: ['click'], mlp: { hidden: [256, 128] } },
    'MoL 8x4x64, gating 128': {
      kind: 'mol', userDim: 64, itemDim: 64, heads: ['click'],
      mol: { queryComponents: 8, itemComponents: 4, componentDim: 64, gatingWidth: 128, temperature: 0.05 },
    },
  } as Record<string, Config>,
};
const goals = { speedupOverTorch: 3, mlpFlopFraction: 0.5, bf16Recall: 0.99 };

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const threads = Number(flag('--threads') ?? buildInfo().threads);
const n = Number(flag('--ads') ?? (quick ? trials.quickAds : trials.ads));
const reps = quick ? trials.quickReps : trials.reps;
const log = (message: string) => process.stderr.write(`${message}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Cell {
  model: string;
  batch: number;
  engine: string;
  msPerBatch: number;
  adsPerSecond: number;
  /** Of the ceiling of the row's precision. */
  flopFraction: number;
  timesMs: number[];
  /** Top-k recall against the fp32 fused scan (bf16 rows). */
  recall?: number;
  bytesPerAd?: number;
}

async function time(reps: number, run: () => Promise<unknown>, warm = true): Promise<number[]> {
  if (warm) await run();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return times;
}

function torchRun(dir: string, adsFile: string, usersFile: string, model: Config): { torch: string; threads: number; batches: { batch: number; ms: number[]; top_ids: number[]; top_scores: number[] }[] } | { error: string } {
  const request = { model: dir, ads: adsFile, users: usersFile, n, itemDim: model.itemDim, userDim: model.userDim, batches: trials.batches, k: trials.k, threads, reps: reps.torch };
  const run = spawnSync('/usr/bin/python3', [join(__dirname, 'scorer_torch.py'), JSON.stringify(request)], {
    encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  if (run.status !== 0) return { error: (run.stderr || run.error?.message || 'python3 failed').trim().split('\n').slice(-1)[0]! };
  return JSON.parse(run.stdout);
}

async function main() {
  const info = buildInfo();
  log(`cangen scorer bench: ${n} ads, batches ${trials.batches.join(', ')}, k ${trials.k}, ${threads} threads, simd ${info.scanSimd}`);
  const ceilings = await measureCeilings(threads, 256);
  log(`ceiling: ${(ceilings.peakFlops / 1e9).toFixed(1)} GFLOP/s fp32, ${(ceilings.readBandwidth / 1e9).toFixed(1)} GB/s read`);
  const scratch = mkdtempSync(join(os.tmpdir(), 'cangen-scorer-bench-'));
  const ads = randomVectors(n, 64, 1);
  const users = randomVectors(Math.max(...trials.batches), 64, 2);
  const adsFile = join(scratch, 'ads.f32');
  const usersFile = join(scratch, 'users.f32');
  writeFileSync(adsFile, ads);
  writeFileSync(usersFile, users);
  const cells: Cell[] = [];
  const agreement: Record<string, { overlap: number; maxScoreDiff: number }> = {};
  const notes: string[] = [];

  for (const [name, config] of Object.entries(trials.models)) {
    const dir = writeModel(config, randomTensors(config));
    const scorer = await LearnedScorer.load(dir, { threads });
    const started = performance.now();
    await scorer.add(sequentialIds(n), ads);
    log(`${name}: add + precompute ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const flops = scorer.info().flopsPerPair;
    const cell = (engine: string, batch: number, times: number[], extra: Partial<Cell> = {}, ceiling = ceilings.peakFlops) => {
      const ms = median(times);
      const rate = (n * batch) / (ms / 1000);
      cells.push({ model: name, batch, engine, msPerBatch: ms, adsPerSecond: rate, flopFraction: (rate * flops) / ceiling, timesMs: times, ...extra });
      log(`  ${engine.padEnd(16)} batch ${String(batch).padStart(2)}: ${ms.toFixed(0)} ms, ${(rate / 1e6).toFixed(2)} M ads/s`);
    };
    let ourTop: { ids: BigInt64Array; scores: Float32Array } | undefined;
    const fp32Top = new Map<number, BigInt64Array>();  // per batch: the fp32 fused top-k, the bf16 rows' reference
    for (const batch of trials.batches) {
      const u = users.subarray(0, batch * 64);
      // Batch 16 costs 16 times batch 1: fewer repetitions keep a full run near 10 minutes.
      const scale = batch === 1 ? 1 : 0.5;
      cell('cangen fused', batch, await time(Math.ceil(reps.ours * scale), async () => {
        const r = await scorer.search(u, trials.k);
        ourTop ??= r.row(0);
        if (!fp32Top.has(batch)) fp32Top.set(batch, r.ids);
      }, batch === 1), { bytesPerAd: scorer.info().bytesPerAd });
      cell('cangen unfused', batch, await time(Math.ceil(reps.unfused * scale), () => scorer.search(u, trials.k, { mode: 'unfused' }), batch === 1));
    }
    log(`  pytorch eager: running (${threads} threads)...`);
    const torch = torchRun(dir, adsFile, usersFile, config);
    if ('error' in torch) {
      notes.push(`${name}: PyTorch unavailable: ${torch.error}`);
      log(`  pytorch: ${torch.error}`);
    } else {
      for (const b of torch.batches) cell(`pytorch ${torch.torch}`, b.batch, b.ms);
      const first = torch.batches[0]!;
      const ours = new Set(Array.from(ourTop!.ids, Number));
      const overlap = first.top_ids.filter((id) => ours.has(id)).length / first.top_ids.length;
      const maxScoreDiff = Math.max(...first.top_scores.map((s, i) => Math.abs(s - ourTop!.scores[i]!)));
      agreement[name] = { overlap, maxScoreDiff };
      log(`  agreement with PyTorch (user 0, top ${trials.k}): ids ${(overlap * 100).toFixed(1)}%, max score diff ${maxScoreDiff.toExponential(2)}`);
    }
    scorer.close();

    // The bf16 scan, loaded after the fp32 scorer is freed (the two copies of 1M MoL ads would
    // take 3.5 GB at once).
    const bf16 = await LearnedScorer.load(dir, { threads, precision: 'bf16' });
    await bf16.add(sequentialIds(n), ads);
    for (const batch of trials.batches) {
      const u = users.subarray(0, batch * 64);
      let recall = 0;
      const times = await time(Math.ceil(reps.ours * (batch === 1 ? 1 : 0.5)), async () => {
        recall = topKRecall((await bf16.search(u, trials.k)).ids, fp32Top.get(batch)!, trials.k);
      });
      cell(`cangen fused bf16 (${bf16.info().reducedSimd})`, batch, times, { recall, bytesPerAd: bf16.info().bytesPerAd }, ceilings.peakBf16Flops);
      log(`    recall vs fp32 ${recall.toFixed(4)}, ${bf16.info().bytesPerAd} bytes per ad`);
    }
    bf16.close();
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(scratch, { recursive: true, force: true });

  // Table.
  const header = ['model', 'batch', 'engine', 'ms/batch', 'M ads/s', '% ceiling', 'recall vs fp32', 'bytes/ad', 'vs pytorch'];
  const rows = cells.map((c) => {
    const torch = cells.find((t) => t.model === c.model && t.batch === c.batch && t.engine.startsWith('pytorch'));
    return [c.model, String(c.batch), c.engine, c.msPerBatch.toFixed(1), (c.adsPerSecond / 1e6).toFixed(2),
      `${(c.flopFraction * 100).toFixed(1)}%`, c.recall === undefined ? '' : c.recall.toFixed(4), c.bytesPerAd === undefined ? '' : String(c.bytesPerAd),
      torch ? `${(c.adsPerSecond / torch.adsPerSecond).toFixed(2)}x` : 'n/a'];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\ncangen learned scorers: ${n.toLocaleString('en')} ads, top-${trials.k}, ${threads} threads, ${os.cpus()[0]?.model ?? 'cpu'}`);
  console.log(`ceilings (measureCeilings): fp32 ${(ceilings.peakFlops / 1e9).toFixed(1)} GFLOP/s, bf16 ${(ceilings.peakBf16Flops / 1e9).toFixed(1)} GFLOP/s (bf16 rows: % of the bf16 one)\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));

  const goalRows: { goal: string; value: string; pass: boolean }[] = [];
  for (const c of cells.filter((x) => x.engine === 'cangen fused')) {
    const torch = cells.find((t) => t.model === c.model && t.batch === c.batch && t.engine.startsWith('pytorch'));
    if (torch) {
      const speedup = c.adsPerSecond / torch.adsPerSecond;
      goalRows.push({ goal: `${c.model}, batch ${c.batch}: >= ${goals.speedupOverTorch}x PyTorch eager`, value: `${speedup.toFixed(2)}x`, pass: speedup >= goals.speedupOverTorch });
    }
    if (c.model.startsWith('MLP')) {
      goalRows.push({ goal: `${c.model}, batch ${c.batch}: >= ${goals.mlpFlopFraction * 100}% of the FLOP ceiling`, value: `${(c.flopFraction * 100).toFixed(1)}%`, pass: c.flopFraction >= goals.mlpFlopFraction });
    }
  }
  for (const c of cells.filter((x) => x.recall !== undefined)) {
    goalRows.push({ goal: `${c.model}, batch ${c.batch}: bf16 scan recall >= ${goals.bf16Recall} against fp32`, value: c.recall!.toFixed(4), pass: c.recall! >= goals.bf16Recall });
  }
  console.log('\nGoals:');
  for (const g of goalRows) console.log(`  ${g.pass ? 'PASS' : 'MISS'}  ${g.goal}: ${g.value}`);
  for (const [model, a] of Object.entries(agreement)) console.log(`  agreement with PyTorch, ${model}: top-${trials.k} ids ${(a.overlap * 100).toFixed(1)}%, max score diff ${a.maxScoreDiff.toExponential(2)}`);
  for (const note of notes) console.log(`  note: ${note}`);
  console.log('  GPU: not measured by this script (see docs/SCORERS.md, scripts/gpu-check.sh)');

  const date = new Date().toISOString().slice(0, 10);
  const out = flag('--out') ?? join(resultsDir(args.includes('--record')), `scorer-${date}${quick ? '-quick' : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}`, node: process.version },
    build: info, threads, ads: n, k: trials.k, ceilings, cells, agreement, goals: goalRows, notes,
  }, null, 2)}\n`);
  log(`wrote ${out}`);
}

/** Share of the reference's ids (users x k, -1 padding ignored) that the answer also returns, user by user. */
function topKRecall(got: BigInt64Array, want: BigInt64Array, k: number): number {
  let hits = 0, total = 0;
  for (let u = 0; u < want.length / k; u++) {
    const mine = new Set(got.subarray(u * k, (u + 1) * k));
    for (const id of want.subarray(u * k, (u + 1) * k)) {
      if (id < 0n) continue;
      total++;
      if (mine.has(id)) hits++;
    }
  }
  return total === 0 ? 1 : hits / total;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
