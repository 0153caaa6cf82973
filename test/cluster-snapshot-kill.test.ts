/**
 * A snapshotter killed with SIGKILL in the middle of uploading a snapshot (a `cangen shard` process
 * on a real nats-server): the half-stored object is never listed, a replica started afterwards
 * loads the previous snapshot and replays the log after it, and answers like one index holding
 * every ad; the abandoned chunks are purged once old enough, the previous snapshot's kept.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, initCluster, type LogPosition } from '../lib';
import { clusterNames } from '../lib/cluster/names';
import { SnapshotStore } from '../lib/cluster/snapshots';
import { assertIdentical, withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { shardProcess, startLines, until } from './helpers/shard-process';

const test = suite('cluster: a snapshotter killed mid-upload');
const skip = natsServerMissing();
const dim = 128;

test('the half-uploaded snapshot is never seen; the next replica starts from the one before', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nats, nc, own }) => {
    await initCluster(nc, { cluster: 'kill', shards: 1, dim });
    const log = await CorpusLog.open(nc, 'kill');
    const single = own(new AdIndex({ dim }));
    let position: LogPosition = {};
    let next = 0;
    const write = async (count: number) => {
      for (let done = 0; done < count; done += 2000) {
        const ids = BigInt64Array.from({ length: 2000 }, (_, i) => BigInt(next + i));
        const vectors = randomVectors(2000, dim, next);
        next += 2000;
        await single.upsert(ids, vectors);
        position = await log.upsert(ids, vectors);
      }
    };
    await write(20_000);
    const os = await nc.jetstream().views.os(clusterNames('kill').snapshotBucket);
    const listed = async () => (await os.list()).filter((o) => !o.deleted).map((o) => o.name).sort();
    const storedBytes = async () => (await os.status()).size;

    // The first snapshot, small, stored whole; its taker then stops cleanly (giving up the lease).
    const first0 = await shardProcess(nats.servers, 'kill', 0, 'k0', ['--snapshot-every-s', '1']);
    const end = Date.now() + 20_000;
    while ((await listed()).length === 0) {
      assert.ok(Date.now() < end, 'no first snapshot within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const [first] = await listed();
    const stopped = new Promise((resolve) => first0.once('exit', resolve));
    first0.kill('SIGTERM');
    await stopped;
    const bytesAfterFirst = await storedBytes();

    // Many more ads, then a snapshotter that replays them (no snapshot while it catches up), serves,
    // and snapshots everything: a large upload, killed once its chunks are arriving.
    await write(100_000);
    const snapshotter = await shardProcess(nats.servers, 'kill', 0, 'k0b', ['--snapshot-every-s', '1']);
    const killBy = Date.now() + 30_000;
    while ((await storedBytes()) < bytesAfterFirst + 4 * 1024 * 1024) {
      assert.ok(Date.now() < killBy, 'the second snapshot\'s upload did not start within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const exited = new Promise((resolve) => snapshotter.once('exit', resolve));
    snapshotter.kill('SIGKILL');
    await exited;
    const bytesAtKill = await storedBytes();
    assert.equal(await listed(), [first], 'only the first snapshot is listed');
    // Its chunks stay in the bucket's stream until a snapshotter purges abandoned uploads (those
    // older than 10 minutes; here at once): the first snapshot's are kept.
    const store = await SnapshotStore.open(nc, clusterNames('kill'), 1);
    assert.is(await store.purgeAbandonedUploads(60_000), 0, 'too young to be abandoned');
    assert.is(await store.purgeAbandonedUploads(0), 1);
    assert.is(await storedBytes(), bytesAfterFirst, 'the abandoned chunks are gone, the first snapshot kept');

    // A new replica loads the first snapshot and replays the rest of the log.
    const started = Date.now();
    const joined = await shardProcess(nats.servers, 'kill', 0, 'k1', ['--snapshot-every-s', '0']);
    const startLine = startLines.get(joined)!;
    assert.match(startLine, `from the snapshot at sequence ${Number(first!.split('.').pop())}`);
    const router = own(await ClusterRouter.start(nc, { cluster: 'kill', deadlineMs: 30_000 }));
    await until(() => router.replicas(0).some((m) => m.replicaId === 'k1' && m.health === 'serving'), 30_000, 'k1 serving');
    const queries = randomVectors(4, dim, 3);
    const answer = await router.search(queries, 20, { readAfter: position });
    assert.is(answer.shards[0]!.replicaId, 'k1');
    assertIdentical(answer.results, await single.search(queries, 20), 'after the kill');
    console.log(`  killed after ${((bytesAtKill - bytesAfterFirst) / 1048576).toFixed(1)} MiB of the second snapshot were stored (never listed, then purged); ` +
      `a new replica loaded ${first} and served ${single.size} ads ${Date.now() - started} ms after its start (tsx start-up included)`);
    joined.kill('SIGKILL');
  });
});

test.run();
