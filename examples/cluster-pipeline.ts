/**
 * The candidate pipeline over a sharded corpus, in one process for the example's sake: a cluster
 * of 2 shards on NATS JetStream, one replica each, and a router whose CandidateEngine searches the
 * shards. Ads are written with their names through the router (the catalog stream), then
 * retrieved with read-your-writes. Start a JetStream server first:
 *
 *   nats-server -js -sd /tmp/nats &
 *   NATS_URL=nats://127.0.0.1:4222 npx tsx examples/cluster-pipeline.ts
 *
 * In production the replicas are `cangen shard` processes and the routers `cangen router --config`
 * (docs/CLUSTER.md); the code is the same.
 */
import { connect } from 'nats';
import { ClusterEngine, ShardReplica, initCluster } from '../lib';

const dim = 16;
const cluster = process.env.CLUSTER ?? `example_${process.pid}`;
async function main(): Promise<void> {
  const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
  await initCluster(nc, { cluster, shards: 2, dim });
  const replicas = await Promise.all([0, 1].map((shard) => ShardReplica.start(nc, { cluster, shard, replicaId: `${cluster}-s${shard}`, snapshots: false })));
  const router = await ClusterEngine.open(nc, {
    cluster,
    routerId: 'router-1',
    // Generous budgets for a first request on a cold process; a serving router keeps shard searches
    // (shardDeadlineMs, default 25) well under its scenarios' deadlines.
    shardDeadlineMs: 500,
    scenarios: [{ name: 'home', generators: ['two-tower', 'content', 'popularity'], k: 5, deadlineMs: 1000 }],
    // Fixed shares, so that every run shows each generator (the default, 'learned', explores).
    allocator: 'static',
  });

  // 200 ads of 4 advertisers in 3 categories; every 20th has only a title (cold start).
  const random = (i: number) => Math.sin(i * 12.9898) * 0.5;
  const ads = Array.from({ length: 200 }, (_, i) => ({
    id: BigInt(i + 1),
    advertiserId: `advertiser-${i % 4}`,
    campaignId: `campaign-${i % 8}`,
    category: ['shoes', 'books', 'travel'][i % 3]!,
    geos: i % 2 ? ['fr'] : ['de'],
    title: `ad number ${i + 1} about ${['running shoes', 'crime novels', 'city breaks'][i % 3]}`,
    ...(i % 20 === 19 ? {} : { embedding: Float32Array.from({ length: dim }, (_, j) => random(i * dim + j)) }),
  }));
  const { embedded, cold, seq } = await router.engine.upsertAds(ads);
  console.log(`wrote ${embedded} ads with an embedding and ${cold} cold-start ads through the catalog (sequence ${seq})`);

  const answer = await router.engine.retrieve({
    userId: 'user-1',
    scenario: 'home',
    features: { embedding: Float32Array.from({ length: dim }, (_, j) => random(7 * dim + j)), geo: 'fr', text: 'running shoes' },
    eligibility: { categories: ['shoes'] },
    readAfter: seq,
  });
  for (const c of answer.candidates) console.log(`  ad ${c.adId} from ${c.source} (score ${c.score.toFixed(3)})`);
  for (const g of answer.generators) console.log(`  ${g.name}: ${g.status}, ${g.kept} kept${g.missingShards ? `, shards ${g.missingShards} missing` : ''}`);

  await router.close();
  for (const replica of replicas) await replica.close();
  await nc.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
