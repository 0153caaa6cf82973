/**
 * The durable corpus: what a write stream, a restart and the bytes of each ad cost.
 *
 *   npx tsx bench/corpus.ts [--ads 1M] [--dim 64] [--batch 10k] [--durability power|process] [--record]
 *   npx tsx bench/corpus.ts --memory-only [--ads 1M] [--dim 64]
 *
 * Loads --ads ads (random embeddings, attributes from a few hundred advertisers and campaigns)
 * through CandidateEngine.upsertAds in batches of --batch into an engine with a data dir, and
 * reports: write throughput, the longest event-loop stall during the writes (SQLite commits run on
 * the main thread), bytes per ad on disk (catalog, snapshot) and in memory, the snapshot's cost,
 * and start-up time three ways: newest snapshot only, snapshot plus replay of 1% of the ads
 * changed after it, and a full rebuild from the catalog. --memory-only measures the in-memory
 * engine alone (the API every version has), for before/after comparisons of memory per ad.
 * Prints a table and writes results/corpus-<date>.json (bench/results/ with --record).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CandidateEngine } from '../lib/orchestration/engine';
import { normalMatrix } from './data';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';

const flags = readFlags(process.argv.slice(2), ['--ads', '--dim', '--batch', '--durability', '--memory-only', '--record', '--help'], __filename);
const ads = parseCount(flags.get('--ads') ?? '1M', '--ads');
const dim = Number(flags.get('--dim') ?? 64);
const batch = parseCount(flags.get('--batch') ?? '10k', '--batch');
const durability = (flags.get('--durability') ?? 'power') as 'power' | 'process';
const memoryOnly = flags.has('--memory-only');

function adsOf(from: number, to: number, vectors: Float32Array, version = 0) {
  return Array.from({ length: to - from }, (_, j) => {
    const i = from + j;
    return {
      id: BigInt(i + 1),
      embedding: vectors.subarray((i % 100_000) * dim, (i % 100_000 + 1) * dim),
      advertiserId: `adv${i % 500}`,
      campaignId: `camp${i % 2000}`,
      category: `cat${i % 40}`,
      geos: i % 3 === 0 ? ['us'] : [],
      budgetLeft: 100 + version,
    };
  });
}

function bytesUnder(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((sum, name) => sum + bytesUnder(join(path, name)), 0);
}

function memory() {
  global.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external + m.arrayBuffers };
}

async function main() {
  const vectors = normalMatrix(Math.min(ads, 100_000), dim, 7);
  const rows: [string, string][] = [];
  const result: Record<string, unknown> = { benchmark: 'corpus', date: new Date().toISOString().slice(0, 10), machine: machineInfo(), ads, dim, batch, durability, memoryOnly };
  const scenarios = [{ name: 's', generators: ['two-tower'] }];
  const dataDir = memoryOnly ? undefined : mkdtempSync(join(tmpdir(), 'cangen-bench-corpus-'));
  try {
    const before = memory();
    // The constructor (memory only) is the API every version has: --memory-only runs on older checkouts too.
    const engine = dataDir ? await CandidateEngine.open({ dim, dataDir, durability, scenarios, threads: 0 }) : new CandidateEngine({ dim, scenarios, threads: 0 });
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    let t = performance.now();
    for (let start = 0; start < ads; start += batch) await engine.upsertAds(adsOf(start, Math.min(ads, start + batch), vectors));
    const loadSeconds = (performance.now() - t) / 1000;
    loop.disable();
    const after = memory();
    const corpus = engine.corpus as unknown as { behavioural?: { stats(): Promise<{ bytesPerAd: number }> }; index?: { stats(): Promise<{ bytesPerAd: number }> } };
    const index = await (corpus.behavioural ?? corpus.index)!.stats();
    result.write = { adsPerSecond: ads / loadSeconds, eventLoopMaxMs: loop.max / 1e6, eventLoopP99Ms: loop.percentile(99) / 1e6 };
    result.memory = { indexBytesPerAd: index.bytesPerAd, processBytesPerAd: (after.rss - before.rss) / ads, jsBytesPerAd: (after.heap + after.external - before.heap - before.external) / ads };
    rows.push(['writes (ads/s, batches of ' + batch + ')', Math.round(ads / loadSeconds).toLocaleString('en-US')]);
    rows.push(['longest event-loop stall during writes (ms)', (loop.max / 1e6).toFixed(1)]);
    rows.push(['index bytes per ad (memory)', index.bytesPerAd.toFixed(0)]);
    rows.push(['process RSS growth per ad (bytes)', ((after.rss - before.rss) / ads).toFixed(0)]);
    rows.push(['JS heap + buffers per ad (bytes)', ((after.heap + after.external - before.heap - before.external) / ads).toFixed(0)]);
    if (dataDir) {
      t = performance.now();
      await engine.corpus.snapshot();
      const snapshotSeconds = (performance.now() - t) / 1000;
      const catalogBytes = bytesUnder(join(dataDir, 'catalog.sqlite')) + bytesOr0(join(dataDir, 'catalog.sqlite-wal'));
      const snapshotBytes = bytesUnder(join(dataDir, 'snapshots'));
      await engine.close();
      const open = async () => {
        const started = performance.now();
        const e = await CandidateEngine.open({ dim, dataDir, scenarios, threads: 0 });
        const seconds = (performance.now() - started) / 1000;
        if (e.store.size !== ads) throw new Error(`reopened with ${e.store.size} ads, expected ${ads}`);
        return { e, seconds };
      };
      const fromSnapshot = await open();
      const changed = Math.max(1, Math.round(ads / 100));
      for (let start = 0; start < changed; start += batch) await fromSnapshot.e.upsertAds(adsOf(start, Math.min(changed, start + batch), vectors, 1));
      await fromSnapshot.e.close();
      const withReplay = await open();
      await withReplay.e.close();
      rmSync(join(dataDir, 'snapshots'), { recursive: true, force: true });
      const rebuild = await open();
      await rebuild.e.close();
      const perMillion = (s: number) => (s * 1e6) / ads;
      result.disk = { catalogBytesPerAd: catalogBytes / ads, snapshotBytesPerAd: snapshotBytes / ads, snapshotSeconds };
      result.startup = { snapshotSecondsPerMillion: perMillion(fromSnapshot.seconds), snapshotPlusReplaySecondsPerMillion: perMillion(withReplay.seconds), replayedAds: changed, rebuildSecondsPerMillion: perMillion(rebuild.seconds) };
      rows.push(['catalog bytes per ad (disk)', (catalogBytes / ads).toFixed(0)]);
      rows.push(['snapshot bytes per ad (disk)', (snapshotBytes / ads).toFixed(0)]);
      rows.push(['snapshot write (s)', snapshotSeconds.toFixed(2)]);
      rows.push(['start-up from snapshot (s per 1M ads)', perMillion(fromSnapshot.seconds).toFixed(2)]);
      rows.push([`start-up, snapshot + replay of ${changed.toLocaleString('en-US')} changes (s per 1M ads)`, perMillion(withReplay.seconds).toFixed(2)]);
      rows.push(['start-up, full rebuild from the catalog (s per 1M ads)', perMillion(rebuild.seconds).toFixed(2)]);
    } else {
      await engine.close();
    }
  } finally {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`\ncorpus: ${ads.toLocaleString('en-US')} ads x ${dim}, durability ${memoryOnly ? 'none (memory only)' : durability}\n`);
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
  const dir = resultsDir(flags.has('--record'));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `corpus-${result.date}${memoryOnly ? '-memory' : ''}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.error(`wrote ${file}`);
}

function bytesOr0(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
