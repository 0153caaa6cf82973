/**
 * A/B of the exact index between two checkouts of cangen, each with its addon built: both are
 * loaded in one process and their searches interleaved (alternating which goes first), so that
 * whatever else the machine does falls on both sides alike. Two processes measured one after the
 * other differ by more than the code does on a shared 2-core machine.
 *
 *   npx tsx bench/ab-exact.ts --before ../old-checkout --after . [--ads 1000000] [--dim 64] [--reps 300] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { machineInfo } from './machine';

interface ExactIndex {
  add(ids: BigInt64Array, vectors: Float32Array): Promise<void>;
  search(queries: Float32Array, k: number, options: { threads: number }): Promise<unknown>;
  close(): void;
}

function flag(name: string, fallback?: string): string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? process.argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`Expected --${name} DIR`);
  return value;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  const trees = { before: resolve(flag('before')), after: resolve(flag('after')) };
  const n = Number(flag('ads', '1000000'));
  const dim = Number(flag('dim', '64'));
  const reps = Number(flag('reps', '300'));
  const threads = 2;
  const x = new Float32Array(n * dim);
  let s = 1;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
  const sides = Object.keys(trees) as (keyof typeof trees)[];
  const index = {} as Record<keyof typeof trees, ExactIndex>;
  const addMs = { before: [] as number[], after: [] as number[] };
  // Each side builds twice, alternating; the second build of each is the one searched.
  for (const side of [...sides, ...sides]) {
    index[side]?.close();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const lib = require(`${trees[side]}/lib`);
    const built: ExactIndex = new lib.FlatIndex({ dim, threads });
    const started = performance.now();
    await built.add(ids, x);
    addMs[side].push(performance.now() - started);
    index[side] = built;
  }
  const queries = x.slice(0, dim * 16);
  const rows: Record<string, unknown>[] = [];
  for (const batch of [1, 16]) {
    const times = { before: [] as number[], after: [] as number[] };
    for (let i = 0; i < reps; i++) {
      for (const side of i % 2 ? sides : [...sides].reverse()) {
        const started = performance.now();
        await index[side].search(queries.subarray(0, dim * batch), 10, { threads });
        times[side].push(performance.now() - started);
      }
    }
    const row = { batch, beforeMedianMs: median(times.before), afterMedianMs: median(times.after) };
    rows.push({ ...row, afterOverBefore: row.afterMedianMs / row.beforeMedianMs });
    console.log(`batch ${batch}: before ${row.beforeMedianMs.toFixed(2)} ms, after ${row.afterMedianMs.toFixed(2)} ms (median of ${reps})`);
  }
  console.log(`add: before ${addMs.before.map((v) => v.toFixed(0)).join(', ')} ms; after ${addMs.after.map((v) => v.toFixed(0)).join(', ')} ms`);
  const out = flag('out', `bench/results/ab-exact-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(out, JSON.stringify({ benchmark: 'ab-exact', date: new Date().toISOString(), machine: machineInfo(), trees, ads: n, dim, threads, reps, search: rows, addMs }, null, 1));
  console.log(`wrote ${out}`);
}

void main();
