/**
 * User-sequence encoding throughput: cangen's native SequenceEncoder side by side with the
 * trainer's own PyTorch module (cangen_train.export.load_model, eager, CPU, torch.inference_mode,
 * Debian's python3-torch under /usr/bin/python3), on random-weight HSTU models (with times) that
 * the trainer made and exported, the same histories and the same thread count.
 *
 *   npx tsx bench/sequence.ts [--quick] [--threads N] [--out FILE] [--record]
 *
 * Models: maxLen L 50 and 200 x 2 and 4 layers x d 64 and 128, 2 heads (--quick: L 50 and 200,
 * 2 layers, d 64). Every user's history is a full window of L events with times; PyTorch gets them
 * as the trainer's evaluation builds its batches (right-aligned, left-padded) and reads the last
 * position. "users/s" is users encoded per second at batch 1 (one user per call, calls back to
 * back) and batch 256 (one call). The append rows: SequenceSessions holding each user's first L-1
 * events, then the whole window of L (one new event) encoded, against encoder.encode of the same
 * windows. The FLOP fraction is users/s x FLOPs per user (flopsPerUser below) over the machine's
 * fp32 ceiling (measureCeilings). Prints tables and the goals of issue 9; writes
 * results/sequence-<date>.json (with --record: bench/results/).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildInfo, measureCeilings, SequenceEncoder, type SequenceHistories } from '../lib';
import { pythonForTraining, trainPackageDir } from '../lib/cli/train';
import { rng } from '../test/helpers/random';
import { readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

interface ModelShape {
  maxLen: number;
  layers: number;
  dim: number;
  heads: number;
}

const grid = (lengths: number[], layers: number[], dims: number[]): ModelShape[] =>
  lengths.flatMap((maxLen) => layers.flatMap((l) => dims.map((dim) => ({ maxLen, layers: l, dim, heads: 2 }))));

const trials = {
  models: grid([50, 200], [2, 4], [64, 128]),
  quickModels: grid([50, 200], [2], [64]),
  items: 1000,
  users: 256,
  batches: [1, 256],
  batch1Users: { full: 64, quick: 32 },
  reps: { full: 3, quick: 3 },
  // Appends take a few milliseconds a batch: more users and repetitions than the full encodes,
  // so that a busy moment of a shared machine does not decide the median.
  appendUsers: 256,
  appendBatches: [1, 256],
  appendReps: 5,
};
const goals = { batch1: 3, batch256: 1.5, appendAt200: 20 };

const flags = readFlags(process.argv.slice(2), ['--quick', '--help', '--record', '--threads', '--out'], __filename);
const quick = flags.has('--quick');
const threads = Number(flags.get('--threads') ?? buildInfo().threads);
const size = quick ? 'quick' : 'full';
const reps = trials.reps[size];
const batch1Users = trials.batch1Users[size];
const log = (message: string) => process.stderr.write(`${message}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const nameOf = (m: ModelShape) => `L ${m.maxLen}, ${m.layers} layers, d ${m.dim}`;

/**
 * FLOPs of one user's query from a full window of n = L events, a multiply-add counted as 2: the
 * work any implementation must do for the last position. Per layer but the last, over all n
 * positions: the uvqk projection d -> 4d (8 n d^2), the causal attention's n(n+1)/2 (query, key)
 * pairs, each a q.k and a w*v over d (4d), and the output projection d -> d (2 n d^2). In the last
 * layer only the keys and values are needed at every position (4 n d^2), u and q, the n pairs and
 * the output projection at the last one. Left out (O(n d) or O(n^2) with no multiply-adds): layer
 * norms, SiLU, biases, time buckets, the item lookup (a precomputed table), the normalisation.
 * PyTorch computes every position in every layer: more than this count, which credits neither side
 * for redundant work.
 */
function flopsPerUser(m: ModelShape): number {
  const n = m.maxLen;
  const d = m.dim;
  const full = 8 * n * d * d + 2 * n * (n + 1) * d + 2 * n * d * d;
  const last = 4 * n * d * d + 4 * d * d + 4 * n * d + 2 * d * d;
  return (m.layers - 1) * full + last;
}

/** users x n events: random known items, times a few minutes to a day apart (whole seconds). */
function randomHistories(users: number, n: number, seed: number): { items: Int32Array; times: Float64Array } {
  const next = rng(seed);
  const items = new Int32Array(users * n);
  const times = new Float64Array(users * n);
  for (let u = 0; u < users; u++) {
    let t = 1_700_000_000 + Math.floor(next() * 1e6);
    for (let e = 0; e < n; e++) {
      items[u * n + e] = 1 + Math.floor(next() * trials.items);
      t += 60 + Math.floor(next() * 86_400);
      times[u * n + e] = t;
    }
  }
  return { items, times };
}

/** Users [lo, hi) with the first `count` of their n events, as one batch (own arrays). */
function batchOf(h: { items: Int32Array; times: Float64Array }, n: number, lo: number, hi: number, count = n): SequenceHistories {
  const users = hi - lo;
  const items = new Int32Array(users * count);
  const times = new Float64Array(users * count);
  const offsets = new Uint32Array(users + 1);
  for (let u = 0; u < users; u++) {
    items.set(h.items.subarray((lo + u) * n, (lo + u) * n + count), u * count);
    times.set(h.times.subarray((lo + u) * n, (lo + u) * n + count), u * count);
    offsets[u + 1] = (u + 1) * count;
  }
  return { items, offsets, times };
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

interface TorchRun {
  torch: string;
  threads: number;
  batches: { batch: number; usersPerRep: number; ms: number[] }[];
  user0: number[];
}

function python(command: string, request: object): { out: string } | { error: string } {
  const run = spawnSync(pythonForTraining(), [join(__dirname, 'sequence_torch.py'), command, JSON.stringify(request)], {
    cwd: trainPackageDir, encoding: 'utf8', maxBuffer: 64 << 20,
    env: { ...process.env, PYTHONPATH: trainPackageDir, OMP_NUM_THREADS: String(threads) },
  });
  if (run.status !== 0) return { error: (run.stderr || run.error?.message || 'python3 failed').trim().split('\n').slice(-1)[0]! };
  return { out: run.stdout };
}

interface Cell {
  model: string;
  batch: number;
  engine: 'cangen' | 'pytorch';
  usersPerSecond: number;
  flopsPerUser: number;
  /** usersPerSecond x flopsPerUser / the fp32 ceiling, set when the run ends. */
  flopFraction: number;
  msPerRep: number[];
  usersPerRep: number;
}

interface AppendCell {
  model: string;
  maxLen: number;
  batch: number;
  appendUsPerUser: number;
  fullUsPerUser: number;
  ratio: number;
  appendMs: number[];
  fullMs: number[];
  reusedPerUser: number;
  maxDiffToFull: number;
}

/** Sessions holding users' first L-1 events, then their whole window, against full encodes. */
async function appendCells(encoder: SequenceEncoder, model: string, h: { items: Int32Array; times: Float64Array }): Promise<AppendCell[]> {
  const n = encoder.maxLen;
  const out: AppendCell[] = [];
  for (const batch of trials.appendBatches) {
    const chunks: [number, number][] = [];
    for (let lo = 0; lo < trials.appendUsers; lo += batch) chunks.push([lo, Math.min(lo + batch, trials.appendUsers)]);
    const before = chunks.map(([lo, hi]) => batchOf(h, n, lo, hi, n - 1));
    const after = chunks.map(([lo, hi]) => batchOf(h, n, lo, hi));
    const sessions = encoder.sessions({ maxBytes: 2 ** 30 });
    const appendMs: number[] = [];
    const fullMs: number[] = [];
    let reused = 0;
    let maxDiff = 0;
    for (let rep = -1; rep < trials.appendReps; rep++) { // rep -1 warms up
      const names = chunks.map(([lo, hi]) => Array.from({ length: hi - lo }, (_, u) => `r${rep}-u${lo + u}`));
      for (let c = 0; c < chunks.length; c++) await sessions.encode(names[c]!, before[c]!);
      const stats = sessions.stats();
      const firstAppend: Float32Array[] = [];
      const appendTime = await timed(async () => {
        for (let c = 0; c < chunks.length; c++) {
          const q = await sessions.encode(names[c]!, after[c]!);
          if (c === 0) firstAppend.push(q);
        }
      });
      reused = (sessions.stats().reusedEvents - stats.reusedEvents) / trials.appendUsers;
      const firstFull: Float32Array[] = [];
      const fullTime = await timed(async () => {
        for (let c = 0; c < chunks.length; c++) {
          const q = await encoder.encode(after[c]!);
          if (c === 0) firstFull.push(q);
        }
      });
      for (let i = 0; i < firstFull[0]!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(firstFull[0]![i]! - firstAppend[0]![i]!));
      sessions.forget(names.flat());
      if (rep >= 0) {
        appendMs.push(appendTime);
        fullMs.push(fullTime);
      }
    }
    sessions.close();
    const appendUs = (median(appendMs) * 1000) / trials.appendUsers;
    const fullUs = (median(fullMs) * 1000) / trials.appendUsers;
    out.push({ model, maxLen: n, batch, appendUsPerUser: appendUs, fullUsPerUser: fullUs, ratio: fullUs / appendUs, appendMs, fullMs, reusedPerUser: reused, maxDiffToFull: maxDiff });
    log(`  append batch ${batch}: ${appendUs.toFixed(1)} us vs full ${fullUs.toFixed(1)} us a user (${(fullUs / appendUs).toFixed(1)}x), ${reused} events reused a user`);
  }
  return out;
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

async function main() {
  const loadStart = os.loadavg();
  const models = quick ? trials.quickModels : trials.models;
  log(`cangen sequence bench: ${models.length} models, ${threads} threads, load average ${loadStart.map((x) => x.toFixed(2)).join(' ')}`);
  const ceilingStart = await measureCeilings(threads, 256);
  const scratch = mkdtempSync(join(os.tmpdir(), 'cangen-sequence-bench-'));
  const named = models.map((m, i) => ({ ...m, name: `m${i}` }));
  const made = python('export', { out: scratch, items: trials.items, models: named });
  if ('error' in made) throw new Error(`the trainer could not export the models: ${made.error}`);

  const cells: Cell[] = [];
  const appends: AppendCell[] = [];
  const agreement: Record<string, number> = {};
  const notes: string[] = [];
  let torchVersion = 'not run';
  for (const m of named) {
    const model = nameOf(m);
    const flops = flopsPerUser(m);
    log(`${model}: ${(flops / 1e6).toFixed(2)} MFLOP a user`);
    const h = randomHistories(trials.users, m.maxLen, m.maxLen * 7 + m.layers * 3 + m.dim);
    const prefix = join(scratch, `${m.name}-histories`);
    writeFileSync(`${prefix}.items`, h.items);
    writeFileSync(`${prefix}.times`, h.times);
    const encoder = await SequenceEncoder.load(join(scratch, m.name), { threads });
    const cell = (engine: Cell['engine'], batch: number, usersPerRep: number, msPerRep: number[]) => {
      const rate = usersPerRep / (median(msPerRep) / 1000);
      cells.push({ model, batch, engine, usersPerSecond: rate, flopsPerUser: flops, flopFraction: 0, msPerRep, usersPerRep });
      log(`  ${engine.padEnd(7)} batch ${String(batch).padStart(3)}: ${rate.toFixed(0)} users/s`);
    };

    const singles = Array.from({ length: batch1Users }, (_, u) => batchOf(h, m.maxLen, u, u + 1));
    const all = batchOf(h, m.maxLen, 0, trials.users);
    const ours = await encoder.encode(all);
    for (const batch of trials.batches) {
      const run = batch === 1
        ? async () => { for (const s of singles) await encoder.encode(s); }
        : () => encoder.encode(batchOf(h, m.maxLen, 0, batch));
      await run();
      const ms: number[] = [];
      for (let r = 0; r < reps; r++) ms.push(await timed(run));
      cell('cangen', batch, batch === 1 ? batch1Users : batch, ms);
    }

    log(`  pytorch: running (${threads} threads)...`);
    const torch = python('run', { model: join(scratch, m.name), histories: prefix, users: trials.users, batches: trials.batches, batch1Users, reps, threads });
    if ('error' in torch) {
      notes.push(`${model}: PyTorch unavailable: ${torch.error}`);
      log(`  pytorch: ${torch.error}`);
    } else {
      const t = JSON.parse(torch.out) as TorchRun;
      torchVersion = t.torch;
      for (const b of t.batches) cell('pytorch', b.batch, b.usersPerRep, b.ms);
      agreement[model] = Math.max(...t.user0.map((v, i) => Math.abs(v - ours[i]!)));
    }

    appends.push(...(await appendCells(encoder, model, h)));
    encoder.close();
  }
  rmSync(scratch, { recursive: true, force: true });
  const ceilingEnd = await measureCeilings(threads, 256);
  const loadEnd = os.loadavg();

  const peak = Math.max(ceilingStart.peakFlops, ceilingEnd.peakFlops);
  console.log(`\ncangen SequenceEncoder vs PyTorch ${torchVersion} (trainer's module, inference_mode): HSTU with times, 2 heads, full windows, ${threads} threads, ${os.cpus()[0]?.model ?? 'cpu'}`);
  console.log(`fp32 ceiling ${(peak / 1e9).toFixed(1)} GFLOP/s (measureCeilings, best of start and end); load average ${loadStart[0]!.toFixed(2)} at start, ${loadEnd[0]!.toFixed(2)} at end\n`);
  const torchOf = (c: Cell) => cells.find((t) => t.engine === 'pytorch' && t.model === c.model && t.batch === c.batch);
  for (const c of cells) c.flopFraction = (c.usersPerSecond * c.flopsPerUser) / peak;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  table(
    ['model', 'MFLOP/user', 'batch', 'cangen users/s', 'PyTorch users/s', 'cangen / PyTorch', 'cangen % ceiling', 'PyTorch % ceiling'],
    cells.filter((c) => c.engine === 'cangen').map((c) => {
      const t = torchOf(c);
      return [c.model, (c.flopsPerUser / 1e6).toFixed(2), String(c.batch), c.usersPerSecond.toFixed(0), t ? t.usersPerSecond.toFixed(0) : 'n/a',
        t ? `${(c.usersPerSecond / t.usersPerSecond).toFixed(2)}x` : 'n/a', pct(c.flopFraction), t ? pct(t.flopFraction) : 'n/a'];
    }),
  );
  console.log('\nIncremental append (sessions hold L-1 events, one added) vs a full window, cangen:\n');
  table(
    ['model', 'batch', 'append us/user', 'full us/user', 'full / append', 'events reused/user'],
    appends.map((a) => [a.model, String(a.batch), a.appendUsPerUser.toFixed(1), a.fullUsPerUser.toFixed(1), `${a.ratio.toFixed(1)}x`, String(a.reusedPerUser)]),
  );

  const goalRows: { goal: string; value: string; pass: boolean }[] = [];
  for (const c of cells.filter((x) => x.engine === 'cangen')) {
    const t = torchOf(c);
    if (!t) continue;
    const want = c.batch === 1 ? goals.batch1 : goals.batch256;
    const speedup = c.usersPerSecond / t.usersPerSecond;
    goalRows.push({ goal: `${c.model}, batch ${c.batch}: >= ${want}x PyTorch`, value: `${speedup.toFixed(2)}x`, pass: speedup >= want });
  }
  for (const a of appends.filter((x) => x.maxLen === 200)) {
    goalRows.push({ goal: `${a.model}, append at batch ${a.batch}: >= ${goals.appendAt200}x cheaper than a full window`, value: `${a.ratio.toFixed(1)}x`, pass: a.ratio >= goals.appendAt200 });
  }
  console.log('\nGoals (issue 9):');
  for (const g of goalRows) console.log(`  ${g.pass ? 'PASS' : 'FAIL'}  ${g.goal}: ${g.value}`);
  for (const [model, diff] of Object.entries(agreement)) console.log(`  agreement, ${model}: user 0's query, max |cangen - PyTorch| ${diff.toExponential(2)}`);
  const appendDiff = Math.max(0, ...appends.map((a) => a.maxDiffToFull));
  console.log(`  append vs full window: max |difference| ${appendDiff.toExponential(2)} (sessions are exact)`);
  for (const note of notes) console.log(`  note: ${note}`);
  if (Math.max(loadStart[0]!, loadEnd[0]!) > 0.5) console.log(`  note: the machine was busy (load average ${loadStart[0]!.toFixed(2)} / ${loadEnd[0]!.toFixed(2)}): expect noise`);

  const date = new Date().toISOString().slice(0, 10);
  const out = flags.get('--out') ?? join(resultsDir(flags.has('--record')), `sequence-${date}${quick ? '-quick' : ''}${flags.has('--threads') ? `-t${threads}` : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({
    date: new Date().toISOString(), machine: machineInfo({ torch: torchVersion }), loadAverage: { start: loadStart, end: loadEnd },
    threads, quick, trials: { ...trials, models, reps, batch1Users }, ceilings: { start: ceilingStart, end: ceilingEnd, peakFlops: peak },
    flopsPerUser: Object.fromEntries(named.map((m) => [nameOf(m), flopsPerUser(m)])), cells, appends, agreement, goals: goalRows, notes,
  }, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
