/**
 * Cross-request batching of corpus searches: N concurrent callers (closed loop: each sends its
 * next search when the last one returns) against one EmbeddingCorpus over a flat index, with
 * batching off (one native call per search) and on, unfiltered and with a filter per request drawn
 * from a few categories (searches only share a call with the same filter). Reports searches per
 * second and each search's p50 / p99 latency, the native calls made and the mean batch. A second
 * table compares the two ways requests with different filters could share work: a call per
 * filter (what EmbeddingCorpus does) against one unfiltered pass for all of them at an inflated k,
 * filtered afterwards (exact only when enough eligible ads come back).
 *
 *   npx tsx bench/batching.ts [--quick] [--size 200k] [--dim 64] [--concurrency 1,4,16,64]
 *                             [--filters 4] [--seconds 3] [--threads 1] [--max-delay-ms 5]
 *                             [--max-in-flight CORES] [--max-batch-size 64] [--out FILE]
 *
 * Prints a table on stdout; with --out, writes the rows as JSON there.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { AdCorpus } from '../lib/corpus/ad-corpus';
import { EmbeddingCorpus } from '../lib/corpus/embedding-corpus';
import { requestEligibility, type RequestEligibility } from '../lib/corpus/eligibility';
import { batchingOptions } from '../lib/request-batcher';
import { normalMatrix, seedFor, uniform } from './data';
import { parseCount, readFlags } from './flags';

const flags = readFlags(process.argv.slice(2), ['--quick', '--help', '--size', '--dim', '--concurrency', '--filters', '--seconds', '--threads',
  '--max-delay-ms', '--max-in-flight', '--max-batch-size', '--out'], __filename);
const quick = flags.has('--quick');
const plan = {
  size: parseCount(flags.get('--size') ?? (quick ? '50k' : '200k'), '--size'),
  dim: parseCount(flags.get('--dim') ?? '64', '--dim'),
  concurrency: (flags.get('--concurrency') ?? '1,4,16,64').split(',').map((c) => parseCount(c, '--concurrency')),
  filters: parseCount(flags.get('--filters') ?? '4', '--filters'),
  seconds: Number(flags.get('--seconds') ?? (quick ? '1.5' : '3')),
  threads: Number(flags.get('--threads') ?? '1'),
  /** The batcher's settings when on (absent: its defaults). */
  batching: {
    ...(flags.has('--max-delay-ms') ? { maxDelayMs: Number(flags.get('--max-delay-ms')) } : {}),
    ...(flags.has('--max-in-flight') ? { maxInFlight: parseCount(flags.get('--max-in-flight')!, '--max-in-flight') } : {}),
    ...(flags.has('--max-batch-size') ? { maxBatchSize: parseCount(flags.get('--max-batch-size')!, '--max-batch-size') } : {}),
  },
  /** The pipeline's usual fetches: quota x overfetch for k 100-200 over four generators. */
  ks: [50, 100, 200],
};
const categories = 8;

interface Row {
  batching: 'off' | 'on';
  filters: number;
  concurrency: number;
  qps: number;
  p50: number;
  p99: number;
  calls: number;
  meanBatch: number;
}

async function build(): Promise<AdCorpus> {
  const corpus = AdCorpus.inMemory({ dim: plan.dim, contentDim: 0, threads: plan.threads });
  const chunk = 50_000;
  for (let at = 0; at < plan.size; at += chunk) {
    const n = Math.min(chunk, plan.size - at);
    const vectors = normalMatrix(n, plan.dim, seedFor('batching-ads', at, plan.dim));
    const upserts = Array.from({ length: n }, (_, i) => ({
      ad: { id: BigInt(at + i + 1), category: `c${(at + i) % categories}` },
      embedding: vectors.subarray(i * plan.dim, (i + 1) * plan.dim),
    }));
    await corpus.write({ upserts });
  }
  return corpus;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function measure(corpus: AdCorpus, enabled: boolean, filters: number, concurrency: number): Promise<Row> {
  const search = new EmbeddingCorpus(corpus.behavioural, corpus.store, { batching: { ...plan.batching, enabled } });
  const eligibilities: (RequestEligibility | undefined)[] = filters === 0
    ? [undefined]
    : Array.from({ length: filters }, (_, f) => requestEligibility(undefined, { categories: [`c${f}`] }));
  const queries = normalMatrix(1024, plan.dim, seedFor('batching-queries', concurrency, plan.dim));
  const next = uniform(seedFor('batching-mix', filters, concurrency));
  // Filters compiled before the clock starts.
  for (const e of eligibilities) if (e) await search.filterFor(e);
  const latencies: number[] = [];
  const end = performance.now() + plan.seconds * 1000;
  let sent = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const q = (sent++ * 7919) % 1024;
      const k = plan.ks[Math.floor(next() * plan.ks.length)]!;
      const eligibility = eligibilities[Math.floor(next() * eligibilities.length)];
      const t0 = performance.now();
      await search.search(queries.subarray(q * plan.dim, (q + 1) * plan.dim), k, eligibility);
      latencies.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const { calls, requests } = search.batching;
  return {
    batching: enabled ? 'on' : 'off',
    filters,
    concurrency,
    qps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    calls,
    meanBatch: requests / Math.max(1, calls),
  };
}

/**
 * `batch` queries spread over `filters` categories: one filtered call per category, against one
 * unfiltered call at k x (categories / 1) x 1.5 whose rows are filtered here. Median of `rounds`.
 */
async function unionVersusGrouped(corpus: AdCorpus, batch: number, filters: number, k: number, rounds: number) {
  const index = corpus.behavioural;
  const queries = normalMatrix(batch, plan.dim, seedFor('batching-union', batch, plan.dim));
  const compiled = await Promise.all(Array.from({ length: filters }, (_, f) => index.filter(corpus.store.nativeFilter(undefined, { categories: [`c${f}`] }))));
  const categoryOfRow = (q: number) => q % filters;
  const grouped: number[] = [];
  const union: number[] = [];
  let exact = 0;
  const unionK = Math.ceil(k * categories * 1.5);
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    const answers = await Promise.all(compiled.map((filter, f) => {
      const rows = Array.from({ length: batch }, (_, q) => q).filter((q) => categoryOfRow(q) === f);
      const mine = new Float32Array(rows.length * plan.dim);
      rows.forEach((q, i) => mine.set(queries.subarray(q * plan.dim, (q + 1) * plan.dim), i * plan.dim));
      return index.search(mine, k, { filter }).then((res) => ({ rows, res }));
    }));
    grouped.push(performance.now() - t0);
    t0 = performance.now();
    const all = await index.search(queries, unionK);
    exact = 0;
    for (let q = 0; q < batch; q++) {
      const wanted = `c${categoryOfRow(q)}`;
      const kept: bigint[] = [];
      for (const id of all.row(q).ids) if (kept.length < k && corpus.store.categoryOf(id) === wanted) kept.push(id);
      const truth = answers.find((a) => a.rows.includes(q))!;
      const row = truth.res.row(truth.rows.indexOf(q)).ids;
      if (kept.length === k && kept.every((id, i) => id === row[i])) exact++;
    }
    union.push(performance.now() - t0);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { grouped: median(grouped), union: median(union), unionK, exactShare: exact / batch };
}

/** What one large k costs a batch: 16 queries at k 100, the same with the batch fetched at k 2000, and split (15 at 100 + 1 at 2000). */
async function largeK(corpus: AdCorpus, rounds: number) {
  const index = corpus.behavioural;
  const n = 16;
  const queries = normalMatrix(n, plan.dim, seedFor('batching-k', n, plan.dim));
  const time = async (run: () => Promise<unknown>) => {
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      await run();
      ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
  };
  // Each row turned into candidates as EmbeddingCorpus does (the result copy is part of the cost).
  const consume = (res: { row(i: number): { ids: BigInt64Array } }, k: number, rows: number) => {
    for (let q = 0; q < rows; q++) Array.from(res.row(q).ids.subarray(0, k));
  };
  return {
    small: await time(async () => consume(await index.search(queries, 100), 100, n)),
    inflated: await time(async () => consume(await index.search(queries, 2000), 100, n)),
    split: await time(() => Promise.all([
      index.search(queries.subarray(0, 15 * plan.dim), 100).then((r) => consume(r, 100, 15)),
      index.search(queries.subarray(15 * plan.dim), 2000).then((r) => consume(r, 2000, 1)),
    ])),
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const corpus = await build();
  const settings = batchingOptions(plan.batching, 'bench batching');
  console.log(`# batching: ${plan.size} ads x ${plan.dim}, flat, ${plan.threads} thread(s) per call, k in {${plan.ks.join(', ')}}, ` +
    `batching ${JSON.stringify(settings)}, ${plan.seconds} s per row, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4}, load average ${os.loadavg()[0]!.toFixed(2)}; ` +
    `corpus built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  console.log('| filters | concurrency | batching | searches/s | p50 ms | p99 ms | native calls | mean batch | speed-up |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const rows: Row[] = [];
  for (const filters of [0, plan.filters]) {
    for (const concurrency of plan.concurrency) {
      const off = await measure(corpus, false, filters, concurrency);
      const on = await measure(corpus, true, filters, concurrency);
      for (const r of [off, on]) {
        rows.push(r);
        const label = filters === 0 ? 'none' : `1 of ${filters}`;
        console.log(`| ${label} | ${concurrency} | ${r.batching} | ${r.qps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.calls} | ${r.meanBatch.toFixed(1)} | ${r === on ? `${(on.qps / off.qps).toFixed(2)}x` : ''} |`);
      }
    }
  }
  console.log(`\n| queries | filters (1 of ${categories} categories each) | k | a call per filter, ms | one unfiltered pass, ms (k') | union answers exact |`);
  console.log('|---|---|---|---|---|---|');
  const sharing = [];
  for (const batch of [16, 64]) {
    const u = await unionVersusGrouped(corpus, batch, plan.filters, 100, quick ? 3 : 5);
    sharing.push({ batch, filters: plan.filters, k: 100, ...u });
    console.log(`| ${batch} | ${plan.filters} | 100 | ${u.grouped.toFixed(2)} | ${u.union.toFixed(2)} (${u.unionK}) | ${(100 * u.exactShare).toFixed(0)}% |`);
  }
  console.log(`\nload average after the rows: ${os.loadavg()[0]!.toFixed(2)}`);
  const inflation = await largeK(corpus, quick ? 5 : 9);
  console.log('\n| 16 queries, unfiltered | ms |\n|---|---|');
  console.log(`| all at k 100 | ${inflation.small.toFixed(2)} |\n| one asks k 2000: the batch at k 2000 | ${inflation.inflated.toFixed(2)} |\n| split by k (15 at 100, 1 at 2000) | ${inflation.split.toFixed(2)} |`);
  const out = flags.get('--out');
  if (out) writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), plan, rows, sharing, inflation }, null, 2));
  await corpus.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
