/**
 * The sharded corpus on loopback: a real nats-server and in-process ShardReplicas (lib/cluster).
 *
 *   npm run bench:cluster -- [--quick] [--ads 200k] [--dim 64] [--k 100] [--concurrency 4] [--seconds 8] [--record]
 *
 * Measures, and prints as tables:
 *   a. router searches (one query, top-k, flat exact) at S = 1, 2, 4 shards over the same corpus,
 *      at concurrency 1 (latency) and --concurrency (throughput), beside the same searches on one
 *      local AdIndex holding every ad; the router's own cost (fan-out + NATS + merge) measured on
 *      a corpus of a few hundred ads per shard, where a shard's search costs almost nothing; and
 *      each shard's search timed directly on its index (the per-shard work);
 *   b. log throughput: writer-acknowledged upserts/s (batches of 100) one write at a time and 16
 *      in flight, and how far a live replica lags behind;
 *   c. catch-up: a replica started on a log of N messages, events/s and ads/s until it serves
 *      (batches of 100, and the ~1 MiB messages of a bulk load from part a);
 *   d. snapshot building blocks per kind (flat fp32/bf16/int8, hnsw, ivf-flat, ivf-sq8, ivf-pq):
 *      index memory (AdIndex stats), AdIndex.save file size and time, AdIndex.load time, single-query
 *      latency samples (ANN kinds at the first nprobe / efSearch reaching recall@k 0.9 on clustered
 *      data), and JetStream object-store put/get throughput for a saved file.
 *
 * Every search uses one thread (searchThreads 1, AdIndex threads 1), so concurrency is the only
 * parallelism. Replicas, router and writer share this process and its cores: on one machine S
 * shards do the same total work as one index plus the router's, so a loopback run shows the
 * router's cost, not the speed-up of S machines (docs/SIZING.md states the model for that).
 * Writes results/cluster-<date>.json (bench/results/ with --record), with the raw latency samples
 * that bench/sizing.ts reads. --quick: about a minute.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, createReadStream, createWriteStream } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect, type NatsConnection } from 'nats';
import { AdIndex, ClusterRouter, CorpusLog, ShardReplica, clusterNames, initCluster, type IndexKind, type ScanPrecision } from '../lib';
import { NatsDeployment, natsServerMissing } from '../test/helpers/nats-server';
import { mixtureMatrix } from './ann/data';
import { normalMatrix, seedFor } from './data';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';
import { closedLoop, round, summary, thousands, type Summary } from './closed-loop';
import { printTable } from './table';
import { ascending } from './sizing-model';

const flags = readFlags(process.argv.slice(2), ['--quick', '--ads', '--dim', '--k', '--concurrency', '--seconds', '--record', '--help'], __filename);
const quick = flags.has('--quick');
const ads = parseCount(flags.get('--ads') ?? (quick ? '50k' : '200k'), '--ads');
const dim = Number(flags.get('--dim') ?? 64);
const k = Number(flags.get('--k') ?? 100);
const concurrency = Number(flags.get('--concurrency') ?? 4);
const seconds = Number(flags.get('--seconds') ?? (quick ? 1.5 : 6));
const shardCounts = [1, 2, 4];
/** Ads per shard in the router-overhead runs: a search over them costs a few microseconds. */
const tinyAdsPerShard = 256;
const logBatch = 100;
const logBatches = quick ? 300 : 2000;
/** Flat kinds are measured at 1M ads (per million, directly); ANN kinds, slower to build, at annAds. */
const flatSnapshotAds = quick ? 100_000 : 1_000_000;
const annAds = quick ? 20_000 : 200_000;
/** ANN kinds are timed at the first operating point reaching this recall@k. */
const targetRecall = 0.9;

interface RouterRun {
  shards: number;
  ads: number;
  load: { seconds: number; messages: number };
  catchUp: { seconds: number; messages: number };
  routerOverheadConcurrency1: Summary & { adsPerShard: number };
  routerOverheadConcurrencyN: Summary & { adsPerShard: number };
  routerConcurrency1: Summary;
  routerConcurrencyN: Summary;
  perShard: (Summary & { shard: number; ads: number })[];
  overheadSamplesConcurrency1: number[];
}

interface LogRun {
  ackedUpdatesPerSecond: number;
  ackedMessagesPerSecond: number;
  replicaLagAtLastAckMessages: number;
  replicaAppliedAllMsAfterLastAck: number;
  replicaAppliedUpdatesPerSecond: number;
}

interface KindRun {
  label: string;
  kind: IndexKind;
  precision: ScanPrecision;
  ads: number;
  dim: number;
  metric: 'ip' | 'l2';
  nlist?: number;
  nprobe?: number;
  efSearch?: number;
  buildSeconds: number;
  memoryBytesPerAd: number;
  vectorBytes: number;
  indexBytes: number;
  catalogBytes: number;
  fileBytes: number;
  fileBytesPerAd: number;
  saveSeconds: number;
  loadSeconds: number;
  saveSecondsPerMillion: number;
  loadSecondsPerMillion: number;
  search: Summary;
  recallAtK?: number;
  latencySamples: number[];
}

/** At most `keep` samples for the JSON, at evenly spaced ranks of the sorted set: the same quantiles, a bounded file. */
function keptSamples(samples: number[], keep = 2000): number[] {
  const sorted = ascending(samples);
  const n = Math.min(keep, sorted.length);
  return Array.from({ length: n }, (_, i) => round(sorted[n === 1 ? 0 : Math.round((i * (sorted.length - 1)) / (n - 1))]!, 4));
}


const progress = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

class Corpus {
  readonly ids: BigInt64Array;
  readonly vectors: Float32Array;
  readonly queries: Float32Array;
  constructor(readonly n: number) {
    this.ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
    this.vectors = normalMatrix(n, dim, seedFor('cluster-corpus', n, dim));
    this.queries = normalMatrix(512, dim, seedFor('cluster-queries', 512, dim));
  }

  query(i: number): Float32Array {
    const row = i % 512;
    return this.queries.slice(row * dim, (row + 1) * dim);
  }

  rows(from: number, to: number) {
    return { ids: this.ids.subarray(from, to), vectors: this.vectors.subarray(from * dim, to * dim) };
  }
}

/** A cluster of S shards with one in-process replica each, loaded through its log. */
class LoopbackCluster {
  private constructor(readonly name: string, readonly replicas: ShardReplica[], readonly router: ClusterRouter, readonly load: { seconds: number; messages: number }, readonly catchUp: { seconds: number; messages: number }) {}

  /** Writes the corpus to the log first, then starts the replicas, so that their start is a catch-up over the bulk-load messages. */
  static async start(nc: NatsConnection, name: string, shards: number, corpus: Corpus): Promise<LoopbackCluster> {
    await initCluster(nc, { cluster: name, shards, dim });
    const log = await CorpusLog.open(nc, name);
    let t = performance.now();
    for (let from = 0; from < corpus.n; from += 10_000) {
      const { ids, vectors } = corpus.rows(from, Math.min(corpus.n, from + 10_000));
      await log.upsert(ids, vectors);
    }
    const load = { seconds: (performance.now() - t) / 1000, messages: log.stats().messages };
    t = performance.now();
    const replicas = await Promise.all(Array.from({ length: shards }, (_, shard) =>
      ShardReplica.start(nc, { cluster: name, shard, replicaId: `${name}-s${shard}`, index: new AdIndex({ dim, threads: 1 }), searchThreads: 1 })));
    await Promise.all(replicas.map(async (r) => {
      if (!(await r.waitApplied(r.stats().startTarget, 600_000))) throw new Error(`replica ${r.replicaId} did not catch up`);
    }));
    const catchUp = { seconds: (performance.now() - t) / 1000, messages: load.messages };
    const router = await ClusterRouter.start(nc, { cluster: name, deadlineMs: 10_000 });
    // The router learns of the replicas through the members bucket's watch.
    for (const until = Date.now() + 10_000; Date.now() < until;) {
      if (Array.from({ length: shards }, (_, s) => router.replicas(s).some((m) => m.health === 'serving')).every(Boolean)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return new LoopbackCluster(name, replicas, router, load, catchUp);
  }

  async stop(nc: NatsConnection): Promise<void> {
    await this.router.close();
    await Promise.all(this.replicas.map((r) => r.close()));
    await deleteCluster(nc, this.name);
  }
}

/** Drops a cluster's streams and buckets: the test server's store is small (512 MB). */
async function deleteCluster(nc: NatsConnection, name: string): Promise<void> {
  const names = clusterNames(name);
  const jsm = await nc.jetstreamManager();
  for (const stream of [names.logStream, names.deadLetterStream, `KV_${names.configBucket}`, `KV_${names.membersBucket}`]) {
    await jsm.streams.delete(stream).catch(() => false);
  }
}

async function routerRuns(nc: NatsConnection, corpus: Corpus, local: AdIndex) {
  const out: RouterRun[] = [];
  const shardSamples: Record<string, number[]> = {};
  // One local index holding every ad: the reference both for answers and for time.
  const localRuns = {
    concurrency1: summary(await closedLoop(1, seconds / 2, async (i) => void (await local.search(corpus.query(i), k, { threads: 1 })))),
    concurrencyN: summary(await closedLoop(concurrency, seconds, async (i) => void (await local.search(corpus.query(i), k, { threads: 1 })))),
  };
  const localSamples = (await closedLoop(1, seconds / 2, async (i) => void (await local.search(corpus.query(i), k, { threads: 1 })))).samples;
  shardSamples[String(corpus.n)] = keptSamples(localSamples);
  progress(`local index: ${round(localRuns.concurrency1.p50Ms)} ms p50 at concurrency 1`);
  const tiny = new Corpus(tinyAdsPerShard * 4);
  for (const shards of shardCounts) {
    progress(`router overhead, ${shards} shard(s) of ~${tinyAdsPerShard} ads`);
    const small = await LoopbackCluster.start(nc, `tiny${shards}`, shards, new Corpus(tinyAdsPerShard * shards));
    const overhead1 = await closedLoop(1, seconds / 2, async (i) => void (await small.router.search(tiny.query(i), k)));
    const overheadN = await closedLoop(concurrency, seconds / 2, async (i) => void (await small.router.search(tiny.query(i), k)));
    await small.stop(nc);

    progress(`${shards} shard(s) over ${corpus.n} ads: loading through the log`);
    const cluster = await LoopbackCluster.start(nc, `bench${shards}`, shards, corpus);
    // The router's answer must be the local index's before its time means anything.
    for (let i = 0; i < 5; i++) {
      const [a, b] = [await cluster.router.search(corpus.query(i), k), await local.search(corpus.query(i), k, { threads: 1 })];
      if (a.partial || a.results.ids.some((id, j) => id !== b.ids[j])) throw new Error(`router answer differs from the local index at S=${shards}, query ${i}`);
    }
    const router1 = await closedLoop(1, seconds / 2, async (i) => void (await cluster.router.search(corpus.query(i), k)));
    const routerN = await closedLoop(concurrency, seconds, async (i) => void (await cluster.router.search(corpus.query(i), k)));
    // Per-shard work: each shard's index searched directly, one query at a time.
    const perShard = [];
    for (const replica of cluster.replicas) {
      const direct = await closedLoop(1, seconds / (2 * shards), async (i) => void (await replica.index.search(corpus.query(i), k, { threads: 1 })));
      perShard.push({ shard: replica.shard, ads: replica.index.size, ...summary(direct) });
      if (shards > 1 && replica.shard === 0) shardSamples[String(replica.index.size)] = keptSamples(direct.samples);
    }
    out.push({
      shards, ads: corpus.n, load: cluster.load, catchUp: cluster.catchUp,
      routerOverheadConcurrency1: { adsPerShard: tinyAdsPerShard, ...summary(overhead1) },
      routerOverheadConcurrencyN: { adsPerShard: tinyAdsPerShard, ...summary(overheadN) },
      routerConcurrency1: summary(router1), routerConcurrencyN: summary(routerN), perShard,
      overheadSamplesConcurrency1: keptSamples(overhead1.samples),
    });
    await cluster.stop(nc);
  }
  return { local: localRuns, runs: out, shardSamples };
}

async function logRuns(nc: NatsConnection, corpus: Corpus) {
  const name = 'logbench';
  await initCluster(nc, { cluster: name, shards: 1, dim });
  const replica = await ShardReplica.start(nc, { cluster: name, shard: 0, replicaId: 'live', index: new AdIndex({ dim, threads: 1 }) });
  const log = await CorpusLog.open(nc, name);
  const batchAt = (b: number) => {
    const from = (b * logBatch) % (corpus.n - logBatch);
    return corpus.rows(from, from + logBatch);
  };
  const write = async (b: number) => {
    const { ids, vectors } = batchAt(b);
    return (await log.upsert(ids, vectors))[0]!;
  };
  const inFlightRuns: { inFlight1?: LogRun; inFlight16?: LogRun } = {};
  for (const inFlight of [1, 16]) {
    const t = performance.now();
    let last = 0;
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < logBatches) last = Math.max(last, await write(next++));
    }));
    const written = performance.now();
    const lagAtEnd = last - replica.applied;
    if (!(await replica.waitApplied(last, 120_000))) throw new Error('the live replica did not apply the log');
    const applied = performance.now();
    inFlightRuns[inFlight === 1 ? 'inFlight1' : 'inFlight16'] = {
      ackedUpdatesPerSecond: (logBatches * logBatch) / ((written - t) / 1000), ackedMessagesPerSecond: logBatches / ((written - t) / 1000),
      replicaLagAtLastAckMessages: lagAtEnd, replicaAppliedAllMsAfterLastAck: applied - written,
      replicaAppliedUpdatesPerSecond: (logBatches * logBatch) / ((applied - t) / 1000),
    };
    progress(`log, ${inFlight} write(s) in flight: ${thousands((logBatches * logBatch) / ((written - t) / 1000))} acked updates/s`);
  }
  // Catch-up: a replica that starts on the whole log (2 x logBatches messages of 100 upserts).
  const messages = replica.applied;
  const t = performance.now();
  const late = await ShardReplica.start(nc, { cluster: name, shard: 0, replicaId: 'late', index: new AdIndex({ dim, threads: 1 }) });
  if (!(await late.waitApplied(late.stats().startTarget, 300_000))) throw new Error('the late replica did not catch up');
  const catchUpSeconds = (performance.now() - t) / 1000;
  const catchUp = { messages, updates: messages * logBatch, seconds: catchUpSeconds, messagesPerSecond: messages / catchUpSeconds, updatesPerSecond: (messages * logBatch) / catchUpSeconds };
  progress(`catch-up over ${messages} messages: ${round(catchUpSeconds)} s`);
  await late.close();
  await replica.close();
  await deleteCluster(nc, name);
  return { batch: logBatch, batches: logBatches, ...inFlightRuns, catchUp };
}

interface KindCase { label: string; kind: IndexKind; precision?: ScanPrecision; n: number }

async function snapshotRuns(nc: NatsConnection, dir: string) {
  const cases: KindCase[] = [
    { label: 'flat fp32', kind: 'flat', n: flatSnapshotAds },
    { label: 'flat bf16', kind: 'flat', precision: 'bf16', n: flatSnapshotAds },
    { label: 'flat int8', kind: 'flat', precision: 'int8', n: flatSnapshotAds },
    { label: 'hnsw', kind: 'hnsw', n: annAds },
    { label: 'ivf-flat', kind: 'ivf-flat', n: annAds },
    { label: 'ivf-sq8', kind: 'ivf-sq8', n: annAds },
    { label: 'ivf-pq', kind: 'ivf-pq', n: annAds },
  ];
  const out: KindRun[] = [];
  // Flat kinds on the standard normal data of part a; ANN kinds on bench:ann's clustered data
  // (L2), where an inverted file has clusters to find (on unclustered data its recall collapses).
  const normalQueries = normalMatrix(512, dim, seedFor('cluster-queries', 512, dim));
  const mixtureQueries = mixtureMatrix(512, dim, 'queries');
  let objectFile: string | undefined;
  for (const c of cases) {
    progress(`snapshot: ${c.label}, ${c.n} ads`);
    const ann = c.kind !== 'flat';
    const vectors = ann ? mixtureMatrix(c.n, dim, 'corpus') : normalMatrix(c.n, dim, seedFor('cluster-snapshot', c.n, dim));
    const queries = ann ? mixtureQueries : normalQueries;
    const query = (i: number) => queries.slice((i % 512) * dim, ((i % 512) + 1) * dim);
    const metric = ann ? 'l2' : 'ip';
    const ids = BigInt64Array.from({ length: c.n }, (_, i) => BigInt(i + 1));
    // nlist ~ 4 sqrt(n), the README's rule, so that per-ad costs carry over to other sizes.
    const nlist = Math.round(4 * Math.sqrt(c.n));
    const index = new AdIndex({ dim, metric, kind: c.kind, threads: 0, nlist, ...(c.precision ? { precision: c.precision } : {}) });
    let t = performance.now();
    if (c.kind.startsWith('ivf')) await index.train(vectors.subarray(0, Math.min(c.n, 40 * nlist) * dim));
    for (let from = 0; from < c.n; from += 50_000) await index.upsert(ids.subarray(from, Math.min(c.n, from + 50_000)), vectors.subarray(from * dim, Math.min(c.n, from + 50_000) * dim));
    const buildSeconds = (performance.now() - t) / 1000;
    const stats = await index.stats();
    const file = join(dir, `${c.label.replace(' ', '-')}.idx`);
    t = performance.now();
    await index.save(file);
    const saveSeconds = (performance.now() - t) / 1000;
    const fileBytes = statSync(file).size;
    t = performance.now();
    const loaded = await AdIndex.load(file, { threads: 1 });
    const loadSeconds = (performance.now() - t) / 1000;
    if (loaded.size !== c.n) throw new Error(`${c.label}: loaded ${loaded.size} ads, saved ${c.n}`);
    // ANN kinds: the smallest search parameter whose recall@k against an exact scan reaches
    // targetRecall (50 queries), so that their latency is that of a useful operating point.
    let recall: number | undefined;
    let tuned: { nprobe?: number; efSearch?: number } = {};
    if (c.kind !== 'flat') {
      const exact = new AdIndex({ dim, metric, threads: 0 });
      await exact.upsert(ids, vectors);
      const nq = 50;
      const truths = [];
      for (let i = 0; i < nq; i++) truths.push(new Set((await exact.search(query(i), k)).ids));
      exact.close();
      const steps = c.kind === 'hnsw' ? [k, 2 * k, 4 * k, 8 * k].map((efSearch) => ({ efSearch })) : [16, 32, 64, 128, 256].filter((p) => p <= nlist).map((nprobe) => ({ nprobe }));
      for (const step of steps) {
        let hits = 0;
        for (let i = 0; i < nq; i++) for (const id of (await loaded.search(query(i), k, step)).ids) if (truths[i]!.has(id)) hits++;
        recall = hits / (nq * k);
        tuned = step;
        if (recall >= targetRecall) break;
      }
    }
    // Single-query latency at this size and operating point, one thread.
    const latency = await closedLoop(1, seconds / 2, async (i) => void (await loaded.search(query(i), k, { threads: 1, ...tuned })));
    const perMillion = 1e6 / c.n;
    out.push({
      label: c.label, kind: c.kind, precision: c.precision ?? 'fp32', ads: c.n, dim,
      metric, ...(c.kind.startsWith('ivf') ? { nlist } : {}), ...tuned, buildSeconds,
      memoryBytesPerAd: stats.bytes / c.n, vectorBytes: stats.vectorBytes, indexBytes: stats.indexBytes, catalogBytes: stats.catalogBytes,
      fileBytes, fileBytesPerAd: fileBytes / c.n, saveSeconds, loadSeconds, saveSecondsPerMillion: saveSeconds * perMillion, loadSecondsPerMillion: loadSeconds * perMillion,
      search: summary(latency), ...(recall === undefined ? {} : { recallAtK: recall }), latencySamples: keptSamples(latency.samples),
    });
    loaded.close();
    index.close();
    if (c.label === 'ivf-flat') objectFile = file;
    else rmSync(file, { force: true });
  }
  const objectStore = await objectStoreRun(nc, objectFile!);
  rmSync(objectFile!, { force: true });
  return { kinds: out, objectStore };
}

/** Puts a saved index file into a JetStream object store (streamed from disk) and reads it back to disk. */
async function objectStoreRun(nc: NatsConnection, file: string) {
  const bytes = statSync(file).size;
  const store = await nc.jetstream().views.os('cangen_bench_snapshots');
  const runs = [];
  // The client's default chunk (128 KiB), then chunks as large as the server's max_payload allows.
  for (const [attempt, chunk] of [128 * 1024, 128 * 1024, nc.info?.max_payload ?? 1024 * 1024].entries()) {
    let t = performance.now();
    await store.put({ name: `snapshot-${attempt}`, options: { max_chunk_size: chunk } }, Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>);
    const putSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const result = await store.get(`snapshot-${attempt}`);
    if (!result) throw new Error('the object store lost the snapshot');
    const copy = `${file}.copy`;
    const sink = createWriteStream(copy);
    let received = 0;
    for await (const chunk of result.data as unknown as AsyncIterable<Uint8Array>) {
      received += chunk.length;
      if (!sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', () => r()));
    }
    await new Promise<void>((resolve, reject) => sink.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const error = await result.error;
    if (error) throw error;
    const getSeconds = (performance.now() - t) / 1000;
    if (received !== bytes) throw new Error(`object store returned ${received} bytes of ${bytes}`);
    rmSync(copy, { force: true });
    await store.delete(`snapshot-${attempt}`);
    runs.push({ chunkBytes: chunk, putSeconds, getSeconds, putMiBPerSecond: bytes / 2 ** 20 / putSeconds, getMiBPerSecond: bytes / 2 ** 20 / getSeconds });
  }
  await store.destroy();
  progress(`object store: ${runs.map((r) => `${round(r.putMiBPerSecond)} MiB/s put, ${round(r.getMiBPerSecond)} MiB/s get (${r.chunkBytes / 1024} KiB chunks)`).join('; ')}`);
  return { bytes, runs, note: 'checksummed by the client (SHA-256 digest) on put and get; file on local disk, page cache warm' };
}

async function main() {
  const missing = natsServerMissing();
  if (missing) throw new Error(missing);
  const started = new Date();
  const result: Record<string, unknown> = {
    benchmark: 'cluster', date: started.toISOString().slice(0, 10), startedAt: started.toISOString(), machine: machineInfo(), loadBefore: loadavg(),
    quick, ads, dim, k, concurrency, seconds, searchThreads: 1,
    note: 'loopback: nats-server, writer, replicas and router in one machine (replicas and router in one Node process); the machine is shared with other work, see loadBefore/loadAfter',
  };
  const deployment = await NatsDeployment.single();
  const nc = await connect({ servers: deployment.servers });
  const dir = mkdtempSync(join(tmpdir(), 'cangen-bench-cluster-'));
  try {
    const corpus = new Corpus(ads);
    const local = new AdIndex({ dim, threads: 1 });
    await local.upsert(corpus.ids, corpus.vectors);
    const search = await routerRuns(nc, corpus, local);
    local.close();
    result.search = search;
    const log = await logRuns(nc, corpus);
    result.log = log;
    const snapshots = await snapshotRuns(nc, dir);
    result.snapshots = snapshots;
    result.loadAfter = loadavg();
    result.seconds = (Date.now() - started.getTime()) / 1000;

    console.log(`\ncluster on loopback: ${thousands(ads)} ads x ${dim}, flat exact, k=${k}, one thread per search; ${result.machine && (result.machine as { cpu: string }).cpu}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const l = search.local;
    const rows: (string | number)[][] = [[`local AdIndex (${thousands(ads)} ads)`, '-', round(l.concurrency1.p50Ms), round(l.concurrency1.p99Ms), '-', thousands(l.concurrencyN.perSecond), round(l.concurrencyN.p50Ms), round(l.concurrencyN.p99Ms), '-', '-']];
    for (const run of search.runs) {
      const shardP50 = Math.max(...run.perShard.map((s) => s.p50Ms));
      rows.push([`router, S=${run.shards}`, thousands(ads / run.shards), round(run.routerConcurrency1.p50Ms), round(run.routerConcurrency1.p99Ms),
        round(run.routerConcurrency1.p50Ms - l.concurrency1.p50Ms), thousands(run.routerConcurrencyN.perSecond),
        round(run.routerConcurrencyN.p50Ms), round(run.routerConcurrencyN.p99Ms), round(shardP50), round(run.routerOverheadConcurrency1.p50Ms)]);
    }
    printTable(`a. searches (concurrency 1, and ${concurrency})`, ['', 'ads/shard', 'p50 ms (c1)', 'p99 ms (c1)', 'p50 vs local (c1)', `req/s (c${concurrency})`, `p50 ms (c${concurrency})`, `p99 ms (c${concurrency})`, 'shard p50 ms', 'router overhead p50 ms'], rows);
    printTable(`b. corpus log (batches of ${logBatch} upserts x ${dim})`, ['', 'acked updates/s', 'replica lag at last ack (msgs)', 'replica done after (ms)'],
      [log.inFlight1!, log.inFlight16!].map((r, i) => [`${i === 0 ? 1 : 16} write(s) in flight`, thousands(r.ackedUpdatesPerSecond), r.replicaLagAtLastAckMessages, round(r.replicaAppliedAllMsAfterLastAck, 0)]));
    const c = log.catchUp;
    const catchRows: (string | number)[][] = [[`${c.messages} msgs of ${logBatch}`, thousands(c.messagesPerSecond), thousands(c.updatesPerSecond), round(c.seconds)]];
    for (const run of search.runs) {
      catchRows.push([`bulk load, S=${run.shards} (${run.catchUp.messages} msgs)`, thousands(run.catchUp.messages / run.catchUp.seconds), thousands(ads / run.catchUp.seconds), round(run.catchUp.seconds)]);
    }
    printTable('c. catch-up (replica start to serving)', ['log', 'messages/s', 'ads/s', 's'], catchRows);
    printTable(`d. snapshots (dim ${dim}; flat at ${thousands(flatSnapshotAds)} ads, ANN at ${thousands(annAds)})`,
      ['kind', 'memory B/ad', 'file B/ad', 'save s/M', 'load s/M', 'search p50 ms', 'p99 ms', 'recall@k', 'at'],
      snapshots.kinds.map((s) => [s.label, round(s.memoryBytesPerAd, 1), round(s.fileBytesPerAd, 1),
        round(s.saveSecondsPerMillion), round(s.loadSecondsPerMillion), round(s.search.p50Ms, 3), round(s.search.p99Ms, 3), s.recallAtK === undefined ? 'exact' : round(s.recallAtK, 3), s.nprobe ? `nprobe ${s.nprobe}/${s.nlist}` : s.efSearch ? `efSearch ${s.efSearch}` : '-']));
    const os = snapshots.objectStore;
    printTable(`d. JetStream object store, a ${round(os.bytes / 2 ** 20, 1)} MiB saved index streamed from disk and back`, ['chunk KiB', 'put MiB/s', 'get MiB/s'],
      os.runs.map((r) => [r.chunkBytes / 1024, round(r.putMiBPerSecond, 1), round(r.getMiBPerSecond, 1)]));
  } finally {
    await nc.close();
    await deployment.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const out = resultsDir(flags.has('--record'));
  mkdirSync(out, { recursive: true });
  const file = join(out, `cluster-${result.date}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, JSON.stringify(result, null, 1));
  console.error(`wrote ${file} (${round(result.seconds as number, 0)} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
