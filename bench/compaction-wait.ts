/**
 * How long writes and searches wait while an HNSW index compacts: builds an 'hnsw' AdIndex of
 * --ads random vectors (default 200k x 32, M 32), removes 5% of them, then runs compact() while
 * one-ad upserts and 10-nearest searches are issued back to back, and tabulates their latencies.
 * Before compaction built its graph outside the exclusive lock, the first write waited for the
 * whole rebuild.
 *   npm run bench:compaction -- [--ads 200k] [--dim 32] [--m 32] [--quick] [--record]
 * Writes results/compaction-wait-<date>.json (with --record: bench/results/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdIndex } from '../lib';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

const flags = readFlags(process.argv.slice(2), ['--ads', '--dim', '--m', '--quick', '--record', '--help'], __filename);
const ads = parseCount(flags.get('--ads') ?? (flags.has('--quick') ? '20k' : '200k'), '--ads');
const dim = parseCount(flags.get('--dim') ?? '32', '--dim');
const hnswM = parseCount(flags.get('--m') ?? '32', '--m');

function randomVectors(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * dim);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;  // LCG: reproducible without a dependency
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function summary(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted[sorted.length - 1] ?? NaN };
}

async function main() {
  const index = new AdIndex({ dim, kind: 'hnsw', hnswM });
  const ids = new BigInt64Array(ads).map((_, i) => BigInt(i + 1));
  const built = performance.now();
  await index.upsert(ids, randomVectors(ads, 1));
  const buildSeconds = (performance.now() - built) / 1000;
  await index.remove(ids.filter((_, i) => i % 20 === 0));

  let nextId = BigInt(ads + 1);
  const writeMs: number[] = [];
  const searchMs: number[] = [];
  let compacting = true;
  const query = randomVectors(1, 3);
  const writes = (async () => {
    while (compacting) {
      const started = performance.now();
      await index.upsert(new BigInt64Array([nextId++]), randomVectors(1, Number(nextId)));
      writeMs.push(performance.now() - started);  // issued during compaction, even if it ends after
    }
  })();
  const searches = (async () => {
    while (compacting) {
      const started = performance.now();
      await index.search(query, 10);
      searchMs.push(performance.now() - started);
    }
  })();
  const started = performance.now();
  await index.compact();
  const compactSeconds = (performance.now() - started) / 1000;
  compacting = false;
  await Promise.all([writes, searches]);
  const stats = await index.stats();
  index.close();

  const result = {
    benchmark: 'compaction-wait',
    date: new Date().toISOString(),
    machine: machineInfo(),
    ads,
    dim,
    hnswM,
    buildSeconds,
    compactSeconds,
    writesDuringCompaction: summary(writeMs),
    searchesDuringCompaction: summary(searchMs),
    tombstonesAfter: stats.deleted,
  };
  const rows = [
    ['during compaction', 'count', 'p50 ms', 'p99 ms', 'max ms'],
    ['upsert of 1 ad', ...Object.values(result.writesDuringCompaction).map((v) => v.toFixed(v % 1 ? 2 : 0))],
    ['search k=10', ...Object.values(result.searchesDuringCompaction).map((v) => v.toFixed(v % 1 ? 2 : 0))],
  ];
  console.log(`hnsw ${ads} x ${dim}, M ${hnswM}: build ${buildSeconds.toFixed(1)} s, compaction ${compactSeconds.toFixed(1)} s`);
  for (const row of rows) console.log(row.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(10))).join(''));
  const dir = resultsDir(flags.has('--record'));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `compaction-wait-${result.date.slice(0, 10)}.json`);
  writeFileSync(path, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${path}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
