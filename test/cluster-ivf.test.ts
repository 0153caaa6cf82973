/**
 * IVF shards trained from their own log (lib/cluster/log-trainer.ts) on a real nats-server:
 * replicas given an untrained IVF-Flat index hold the log until they have a training sample, then
 * index every ad of their shard; two replicas of a shard train on the same sample and answer
 * alike; recall@10 against an exact index is at least that of one IVF index over every ad
 * (less 0.01); a replica that joins later loads a trained snapshot and trains nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, ShardReplica, initCluster, laterPosition, shardOf, type LogPosition, type SearchResults } from '../lib';
import { withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { until } from './helpers/shard-process';

const test = suite('cluster: IVF shards trained from the log');
const skip = natsServerMissing();
const dim = 16;
const ivf = { dim, kind: 'ivf-flat' as const, nlist: 32, nprobe: 6 };

function recall(got: SearchResults, exact: SearchResults, queries: number): number {
  let hits = 0;
  let total = 0;
  for (let q = 0; q < queries; q++) {
    const truth = new Set(exact.row(q).ids);
    for (const id of got.row(q).ids) if (truth.has(id)) hits++;
    total += truth.size;
  }
  return hits / total;
}

test('replicas train their IVF index from the log, hold every ad, agree, and match one IVF index in recall', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    const replicas: ShardReplica[] = [];
    const exact = own(new AdIndex({ dim }));
    const single = own(new AdIndex(ivf));
    await initCluster(nc, { cluster: 'ivf', shards: 2, dim });
    const log = await CorpusLog.open(nc, 'ivf');
    let position: LogPosition = {};
    const all: Float32Array[] = [];
    const write = async (batch: number) => {
      const ids = BigInt64Array.from({ length: 500 }, (_, i) => BigInt(batch * 500 + i));
      const vectors = randomVectors(500, dim, 100 + batch);
      all.push(vectors);
      await exact.upsert(ids, vectors);
      position = laterPosition(position, await log.upsert(ids, vectors));
    };
    for (let b = 0; b < 24; b++) await write(b);
    // Shard sizes are about 6000 now: below the sample of 8000, so each replica trains once caught
    // up (the minimum path), at its shard's last message as of its start: the same one for both of
    // shard 0. (Above 4096 ads per shard, so that searches are approximate: AdIndex answers smaller
    // eligible sets exactly.)
    const start = async (shard: number, replicaId: string) => {
      const replica = own(await ShardReplica.start(nc, { cluster: 'ivf', shard, replicaId, index: new AdIndex(ivf), train: { sample: 8000, minimum: 500 }, snapshots: { everyMs: 0 } }));
      replicas.push(replica);
      return replica;
    };
    const [a, b] = [await start(0, 'a'), await start(0, 'b')];
    await start(1, 'c');
    for (let b2 = 24; b2 < 28; b2++) await write(b2);
    for (const r of replicas) assert.ok(await r.waitApplied(position[r.shard]!, 20_000), `${r.replicaId} applied ${r.applied}`);
    for (const r of replicas) {
      assert.ok(r.index.isTrained, `${r.replicaId} trained`);
      assert.is(r.stats().heldForTraining, 0);
      const mine = (await exact.eligibleIds({})).filter((id) => shardOf(id, 2) === r.shard).length;
      assert.is(r.index.size, mine, `${r.replicaId} holds every ad of shard ${r.shard}`);
    }

    // The two replicas of shard 0 trained on the same sample: their answers are the same.
    const queries = randomVectors(50, dim, 7);
    const fromA = await a.index.search(queries, 10);
    const fromB = await b.index.search(queries, 10);
    assert.equal([...fromA.ids], [...fromB.ids]);
    assert.equal([...fromA.scores], [...fromB.scores]);

    // Recall@10 of the sharded corpus against the exact answer, beside one IVF index (trained on
    // the first 12000 ads) holding every ad.
    const joined = new Float32Array(all.length * 500 * dim);
    all.forEach((v, i) => joined.set(v, i * 500 * dim));
    await single.train(joined.subarray(0, 12_000 * dim));
    await single.upsert(BigInt64Array.from({ length: all.length * 500 }, (_, i) => BigInt(i)), joined);
    const router = own(await ClusterRouter.start(nc, { cluster: 'ivf', deadlineMs: 5000 }));
    await until(() => [0, 1].every((s) => router.replicas(s).some((m) => m.health === 'serving')), 10_000, 'both shards serving');
    const truth = await exact.search(queries, 10);
    const sharded = recall((await router.search(queries, 10, { readAfter: position })).results, truth, 50);
    const one = recall(await single.search(queries, 10), truth, 50);
    console.log(`  recall@10 (nprobe 6 of 32 lists): sharded ${sharded.toFixed(3)}, one IVF-Flat index over every ad ${one.toFixed(3)}`);
    assert.ok(sharded >= one - 0.01, `sharded ${sharded} vs one index ${one}`);

    // A replica joining later loads a trained snapshot: nothing held, nothing trained.
    const manifest = (await a.snapshot())!;
    const late = await start(0, 'late');
    assert.ok(await late.waitApplied(position[0]!, 10_000));
    assert.is(late.stats().startedFromSnapshot, manifest.sequence);
    assert.is(late.stats().heldForTraining, 0);
    const fromLate = await late.index.search(queries, 10);
    assert.equal([...fromLate.ids], [...fromA.ids]);
  });
});

test('an empty IVF shard answers empty, holds the first writes until it can train, then serves them', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    await initCluster(nc, { cluster: 'ivfempty', shards: 1, dim });
    const replica = own(await ShardReplica.start(nc, { cluster: 'ivfempty', shard: 0, replicaId: 'e', index: new AdIndex(ivf), train: { sample: 1300, minimum: 1300 }, snapshots: false }));
    assert.is(replica.health, 'serving', 'an empty shard serves (empty answers)');
    const log = await CorpusLog.open(nc, 'ivfempty');
    await log.upsert(BigInt64Array.from({ length: 700 }, (_, i) => BigInt(i)), randomVectors(700, dim, 1));
    await until(() => replica.stats().heldForTraining === 1, 5000, 'the first write held');
    assert.is(replica.health, 'catching-up', 'ads waiting for training: not serving');
    assert.is(replica.index.size, 0);
    const last = (await log.upsert(BigInt64Array.from({ length: 700 }, (_, i) => BigInt(1000 + i)), randomVectors(700, dim, 2)))[0]!;
    assert.ok(await replica.waitApplied(last, 10_000));
    assert.is(replica.index.size, 1400);
    assert.is(replica.health, 'serving');
  });
});

test.run();
