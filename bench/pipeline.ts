/**
 * The candidate pipeline in a router (ClusterEngine) against the same pipeline in one process
 * (CandidateEngine), on loopback: a real nats-server, S = 2 in-process ShardReplicas, the same
 * ads, scenario and requests.
 *
 *   npm run bench:pipeline -- [--quick] [--ads 100k] [--dim 64] [--concurrency 4] [--seconds 6] [--record]
 *
 * Measures, and prints as tables:
 *   a. writes with names through the catalog (batches of 500 ads): ads/s acknowledged (stored in
 *      the catalog and applied by the router's corpus), and ads/s until the applier had put them in
 *      the shard logs and the replicas had applied them (end to end);
 *   b. a second router joining: the catalog replayed into its corpus, ads/s;
 *   c. retrieve (two-tower, dot-product scorer, content, popularity; k 100) at concurrency 1 and
 *      --concurrency: p50/p99 and requests/s of the local engine and of the router, and how many
 *      router answers missed a shard.
 *
 * Every index search uses one thread. Replicas, router and the local engine share this process
 * and its cores: the figures show the pipeline's added cost (catalog, fan-out, NATS), not what S
 * machines would serve (docs/SIZING.md). Writes results/pipeline-<date>.json (bench/results/ with --record).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { CandidateEngine, ClusterEngine, ShardReplica, initCluster, type AdUpsert, type RetrieveRequest, type ScenarioConfig } from '../lib';
import { NatsDeployment, natsServerMissing } from '../test/helpers/nats-server';
import { closedLoop, round, summary, thousands } from './closed-loop';
import { normalMatrix, seedFor } from './data';
import { parseCount, readFlags, resultsDir } from './flags';
import { machineInfo } from './machine';
import { printTable } from './table';

const flags = readFlags(process.argv.slice(2), ['--quick', '--ads', '--dim', '--concurrency', '--seconds', '--record', '--help'], __filename);
const quick = flags.has('--quick');
const ads = parseCount(flags.get('--ads') ?? (quick ? '20k' : '100k'), '--ads');
const dim = Number(flags.get('--dim') ?? 64);
const concurrency = Number(flags.get('--concurrency') ?? 4);
const seconds = Number(flags.get('--seconds') ?? (quick ? 1.5 : 6));
const shards = 2;
const writeBatch = 500;
const scenarios: ScenarioConfig[] = [{ name: 'home', generators: ['two-tower', 'scorer', 'content', 'popularity'], k: 100, deadlineMs: 200 }];
const engineOptions = { scenarios, allocator: 'static' as const, threads: 1 };

/** Ads with names of every kind; one in 20 without an embedding (cold start, content generator). */
function makeAds(): AdUpsert[] {
  const vectors = normalMatrix(ads, dim, seedFor('pipeline-ads', ads, dim));
  return Array.from({ length: ads }, (_, i) => ({
    id: BigInt(i + 1),
    advertiserId: `advertiser-${i % 50}`,
    campaignId: `campaign-${i % 200}`,
    category: `category-${i % 20}`,
    geos: i % 3 === 0 ? [] : [`geo-${i % 10}`],
    title: `ad ${i} category ${i % 20} words ${i % 97} ${i % 89}`,
    ...(i % 20 === 19 ? {} : { embedding: vectors.subarray(i * dim, (i + 1) * dim) }),
  }));
}

function makeRequests(n: number): RetrieveRequest[] {
  const users = normalMatrix(n, dim, seedFor('pipeline-users', n, dim));
  return Array.from({ length: n }, (_, i) => ({
    userId: `user-${i}`,
    scenario: 'home',
    features: { embedding: users.slice(i * dim, (i + 1) * dim), geo: `geo-${i % 10}`, text: `category ${i % 20} words ${i % 97}` },
    ...(i % 2 ? { eligibility: { categories: [`category-${i % 20}`, `category-${(i + 7) % 20}`] } } : {}),
  }));
}

async function main() {
  const missing = natsServerMissing();
  if (missing) throw new Error(missing);
  const started = new Date();
  const loadBefore = loadavg();
  const deployment = await NatsDeployment.single();
  const nc = await connect({ servers: deployment.servers });
  const closers: { close(): unknown }[] = [];
  try {
    await initCluster(nc, { cluster: 'bench', shards, dim });
    for (let s = 0; s < shards; s++) closers.push(await ShardReplica.start(nc, { cluster: 'bench', shard: s, replicaId: `b${s}`, snapshots: false, searchThreads: 1 }));
    const router = await ClusterEngine.open(nc, { ...engineOptions, cluster: 'bench', routerId: 'router-a', shardDeadlineMs: 150 });
    closers.push(router);
    const local = new CandidateEngine({ ...engineOptions, dim });
    const all = makeAds();

    // a. Writes through the catalog, one batch at a time (as a feed would send them).
    const writeStart = performance.now();
    let last = 0;
    for (let i = 0; i < all.length; i += writeBatch) last = (await router.engine.upsertAds(all.slice(i, i + writeBatch))).seq;
    const ackedSeconds = (performance.now() - writeStart) / 1000;
    await router.readAfter(last, 600_000);
    const position = router.remote.readFloor;
    const replicas = closers.filter((c): c is ShardReplica => c instanceof ShardReplica);
    await Promise.all(replicas.map((r) => r.waitApplied(position[r.shard] ?? 0, 600_000)));
    const endToEndSeconds = (performance.now() - writeStart) / 1000;
    for (let i = 0; i < all.length; i += writeBatch) await local.upsertAds(all.slice(i, i + writeBatch));

    // b. A second router joins: the whole catalog replayed into its corpus.
    const joinStart = performance.now();
    const second = await ClusterEngine.open(nc, { ...engineOptions, cluster: 'bench', routerId: 'router-b' });
    const joinSeconds = (performance.now() - joinStart) / 1000;
    await second.close();

    // c. Retrieve, local pipeline against the router's.
    const requests = makeRequests(512);
    let partial = 0;
    const runs: Record<string, ReturnType<typeof summary>> = {};
    for (const workers of [1, concurrency]) {
      runs[`local c${workers}`] = summary(await closedLoop(workers, seconds, async (i) => { await local.retrieve(requests[i % requests.length]!); }));
      runs[`router c${workers}`] = summary(await closedLoop(workers, seconds, async (i) => {
        const answer = await router.engine.retrieve(requests[i % requests.length]!);
        if (answer.generators.some((g) => g.missingShards)) partial++;
      }));
    }
    await local.close();

    const result = {
      benchmark: 'pipeline', date: started.toISOString().slice(0, 10), startedAt: started.toISOString(), machine: machineInfo(), loadBefore,
      quick, ads, dim, shards, concurrency, seconds, writeBatch, scenarios,
      note: 'loopback: nats-server, replicas, router and local engine in one machine (all but nats-server in one Node process), one thread per index search',
      writes: { ackedAdsPerSecond: ads / ackedSeconds, endToEndAdsPerSecond: ads / endToEndSeconds, ackedSeconds, endToEndSeconds },
      join: { seconds: joinSeconds, adsPerSecond: ads / joinSeconds },
      retrieve: runs, partialRouterAnswers: partial, loadAfter: loadavg(),
    };
    console.log(`\npipeline on loopback: ${thousands(ads)} ads x ${dim} (1 in 20 cold), ${shards} shards, k=100; ${result.machine.cpu}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    printTable(`a. writes with names through the catalog (batches of ${writeBatch})`, ['', 'ads/s', 's'], [
      ['acknowledged (catalog stored, router applied)', thousands(result.writes.ackedAdsPerSecond), round(ackedSeconds)],
      ['in the shards (applier sent, replicas applied)', thousands(result.writes.endToEndAdsPerSecond), round(endToEndSeconds)],
    ]);
    printTable('b. a second router joins (catalog replayed)', ['', 'ads/s', 's'], [['replay', thousands(result.join.adsPerSecond), round(joinSeconds)]]);
    printTable(`c. retrieve (two-tower, scorer, content, popularity), concurrency 1 and ${concurrency}`, ['', 'req/s', 'p50 ms', 'p99 ms'],
      Object.entries(runs).map(([name, r]) => [name, thousands(r.perSecond), round(r.p50Ms), round(r.p99Ms)]));
    console.log(`router answers that missed a shard: ${partial}`);
    const dir = resultsDir(flags.has('--record'));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `pipeline-${result.date}${quick ? '-quick' : ''}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`wrote ${file}`);
  } finally {
    for (const c of closers.reverse()) await c.close();
    await nc.close();
    await deployment.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
