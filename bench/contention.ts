/**
 * Writes under search load: how long an AdIndex write (an upsert batch, an attribute change, a
 * remove) takes while N search loops saturate the index, next to the same writes on an idle
 * index, and what the searches' latency is meanwhile (half of them filtered by a filter compiled
 * once). A write's extra time under load is its wait for the lock; a reader-preferring lock lets
 * the searches keep it waiting, and filters that go stale with each write make the next filtered
 * searches recompile them over the whole corpus.
 *
 *   npx tsx bench/contention.ts [--quick] [--size 100k] [--dim 64] [--kinds flat,hnsw]
 *                               [--searchers 8] [--writes 60] [--batch 100] [--out FILE] [--record]
 *
 * Prints a table on stdout and writes results/contention-<date>.json (with --record: bench/results/).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AdIndex } from '../lib';
import { normalMatrix, seedFor } from './data';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

const flags = readFlags(process.argv.slice(2), ['--quick', '--help', '--record', '--size', '--dim', '--kinds', '--searchers', '--writes', '--batch', '--out'], __filename);
const quick = flags.has('--quick');
const plan = {
  size: parseCount(flags.get('--size') ?? (quick ? '20k' : '100k'), '--size'),
  dim: parseCount(flags.get('--dim') ?? '64', '--dim'),
  kinds: (flags.get('--kinds') ?? 'flat,hnsw').split(',') as ('flat' | 'hnsw')[],
  searchers: parseCount(flags.get('--searchers') ?? '8', '--searchers'),
  writes: parseCount(flags.get('--writes') ?? (quick ? '30' : '60'), '--writes'),
  batch: parseCount(flags.get('--batch') ?? '100', '--batch'),
  k: 10,
};
// Every search loop and the writer need a libuv worker, or the writes would queue behind
// searches in the pool instead of at the index's lock. libuv reads the size once, so the script
// runs itself again with it set when it is too small.
const poolSize = plan.searchers + 2;
if (Number(process.env.UV_THREADPOOL_SIZE ?? 4) < poolSize) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(poolSize) },
  });
  process.exit(child.status ?? 1);
}

interface Latencies {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

function summarize(ms: number[]): Latencies {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN, n: s.length };
}

function attributes(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n * 6);
  for (let i = 0; i < n; i++) out.set([(i + seed) % 10 === 0 ? 0 : 1, (i + seed) % 3, (i * 7 + seed) % 500, 0, (i + seed) % 40, (i + seed) % 13], i * 6);
  return out;
}

/** The writes, in turn: an upsert batch (half new ids, half replacing), an attribute change, a remove. */
function makeWriter(index: AdIndex, dim: number) {
  let next = plan.size;
  let step = 0;
  return async (): Promise<number> => {
    const kind = step++ % 3;
    const ids = new BigInt64Array(plan.batch);
    for (let i = 0; i < plan.batch; i++) ids[i] = BigInt(i % 2 === 0 ? next++ : Math.floor(((step * 7919 + i * 104729) % plan.size)));
    const start = performance.now();
    if (kind === 0) await index.upsert(ids, normalMatrix(plan.batch, dim, seedFor('write', step, dim)), attributes(plan.batch, step));
    else if (kind === 1) await index.setAttributes(ids, attributes(plan.batch, step + 1));
    else await index.remove(ids.subarray(0, 10));
    return performance.now() - start;
  };
}

async function measureKind(kind: 'flat' | 'hnsw') {
  const { size, dim } = plan;
  const index = new AdIndex({ dim, kind, threads: 0, hnswM: 16, efConstruction: 40 });
  const vectors = normalMatrix(size, dim, seedFor('corpus', size, dim));
  const ids = new BigInt64Array(size);
  for (let i = 0; i < size; i++) ids[i] = BigInt(i);
  const built = performance.now();
  await index.upsert(ids, vectors, attributes(size, 0));
  process.stderr.write(`${kind}: ${size} x ${dim} built in ${((performance.now() - built) / 1000).toFixed(1)} s\n`);
  const filter = await index.filter({ active: true, categories: Array.from({ length: 20 }, (_, c) => c) });
  const queries = normalMatrix(64, dim, seedFor('queries', 64, dim));
  const query = (i: number) => queries.subarray((i % 64) * dim, (i % 64 + 1) * dim);
  const write = makeWriter(index, dim);

  // Idle: the writes alone, then the searches alone.
  const idleWrites: number[] = [];
  for (let w = 0; w < Math.min(15, plan.writes); w++) idleWrites.push(await write());
  const idleSearches: number[] = [];
  for (let i = 0; i < 100; i++) {
    const start = performance.now();
    await index.search(query(i), plan.k, { threads: 1, filter: i % 2 === 0 ? filter : undefined });
    idleSearches.push(performance.now() - start);
  }

  // Loaded: N search loops back to back while the writer writes.
  let running = true;
  const loadedSearches: number[] = [];
  const loop = async (s: number) => {
    for (let i = s; running; i += plan.searchers) {
      const start = performance.now();
      await index.search(query(i), plan.k, { threads: 1, filter: s % 2 === 0 ? filter : undefined });
      loadedSearches.push(performance.now() - start);
    }
  };
  const loops = Array.from({ length: plan.searchers }, (_, s) => loop(s));
  await new Promise((resolve) => setTimeout(resolve, 200)); // the loops are saturating
  const loadedWrites: number[] = [];
  const loadStart = performance.now();
  for (let w = 0; w < plan.writes; w++) {
    loadedWrites.push(await write());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;
  running = false;
  await Promise.all(loops);
  const stats = (await index.stats()) as { filterCompiles?: number };
  index.close();
  return {
    kind,
    idle: { write: summarize(idleWrites), search: summarize(idleSearches) },
    loaded: { write: summarize(loadedWrites), search: summarize(loadedSearches), searchesPerSecond: loadedSearches.length / loadSeconds },
    filterCompiles: stats.filterCompiles ?? null,
  };
}

async function main() {
  const results = [];
  for (const kind of plan.kinds) results.push(await measureKind(kind));
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2)).padStart(8);
  const lines = [
    `AdIndex writes under search load: ${plan.size} x ${plan.dim}, ${plan.searchers} search loops (half filtered), writes of ${plan.batch} ads, ${os.cpus().length} cores`,
    '',
    'kind  | phase  | write p50 | write p99 | write max | search p50 | search p99 | searches/s',
    '------|--------|-----------|-----------|-----------|------------|------------|-----------',
  ];
  for (const r of results) {
    for (const phase of ['idle', 'loaded'] as const) {
      const p = r[phase];
      const rate = phase === 'loaded' ? r.loaded.searchesPerSecond.toFixed(0) : '-';
      lines.push(`${r.kind.padEnd(5)} | ${phase.padEnd(6)} | ${f(p.write.p50)}  | ${f(p.write.p99)}  | ${f(p.write.max)}  | ${f(p.search.p50)}   | ${f(p.search.p99)}   | ${rate.padStart(9)}`);
    }
  }
  lines.push('', 'milliseconds; a write under load minus the same write idle is its wait for the lock');
  console.log(lines.join('\n'));
  const out = flags.get('--out') ?? join(resultsDir(flags.has('--record')), `contention-${new Date().toISOString().slice(0, 10)}${quick ? '-quick' : ''}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), plan, results }, null, 2));
  process.stderr.write(`wrote ${out}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
