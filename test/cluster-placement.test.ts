/**
 * Advertiser affinity (initCluster placement 'advertiser') on a real nats-server: every ad of an
 * advertiser lands on its advertiser's shard, answers equal one index holding every ad, a search
 * filtered to some advertisers asks only their shards, removes and attribute changes (which name
 * ads by id only) reach the ad wherever it is, and upserts without advertisers are refused.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, ShardReplica, initCluster, laterPosition, readShardMap, type AdAttributes, type LogPosition } from '../lib';
import { adIdHash } from '../lib/cluster/shard-hash';
import { assertIdentical, withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { rejects } from './helpers/rejects';
import { until } from './helpers/shard-process';

const test = suite('cluster: advertiser placement');
const skip = natsServerMissing();
const dim = 8;
const shards = 4;

test('ads live on their advertiser\'s shard; advertiser filters ask only those shards; removes and attribute changes reach every ad', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    const replicas: ShardReplica[] = [];
    const single = own(new AdIndex({ dim }));
    await initCluster(nc, { cluster: 'adv', shards, dim, placement: 'advertiser' });
    assert.is((await readShardMap(nc, 'adv')).placement, 'advertiser');
    await rejects(() => initCluster(nc, { cluster: 'adv', shards, dim }), 'ERR_SHARD_MAP', /placement advertiser, not ad/);
    const log = await CorpusLog.open(nc, 'adv');
    const advertiserOf = (i: number) => 100 + (i % 30);
    const n = 1200;
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(50_000 + i * 7));
    const vectors = randomVectors(n, dim, 4);
    const attributes: AdAttributes[] = Array.from({ length: n }, (_, i) => ({ advertiser: advertiserOf(i), category: i % 5 }));
    let position: LogPosition = await log.upsert(ids, vectors, attributes);
    await single.upsert(ids, vectors, attributes);
    await rejects(() => log.upsert([1n], new Float32Array(dim).fill(1)), 'ERR_INVALID_ARGUMENT', /advertiser/);

    for (let s = 0; s < shards; s++) replicas.push(own(await ShardReplica.start(nc, { cluster: 'adv', shard: s, replicaId: `a${s}`, snapshots: false })));
    for (const r of replicas) assert.ok(await r.waitApplied(position[r.shard] ?? 0, 10_000));
    // Each shard holds exactly the ads of the advertisers hashed to it (FNV-1a of the advertiser number).
    for (const r of replicas) {
      const expected = [...ids].filter((_, i) => adIdHash(BigInt(advertiserOf(i))) % shards === r.shard).sort();
      const held = [...(await r.index.eligibleIds({}))].sort();
      assert.equal(held, expected, `shard ${r.shard}`);
    }

    const router = own(await ClusterRouter.start(nc, { cluster: 'adv', deadlineMs: 5000 }));
    await until(() => [0, 1, 2, 3].every((s) => router.replicas(s).length === 1), 5000, 'four replicas');
    const queries = randomVectors(3, dim, 6);
    assertIdentical((await router.search(queries, 30)).results, await single.search(queries, 30), 'no filter');
    const chosen = [103, 117];
    const filtered = await router.search(queries, 30, { filter: { advertisers: chosen } });
    assertIdentical(filtered.results, await single.search(queries, 30, { filter: { advertisers: chosen } }), 'two advertisers');
    const asked = filtered.shards.filter((o) => !o.skipped).map((o) => o.shard);
    assert.equal(asked, [...new Set(chosen.map((a) => adIdHash(BigInt(a)) % shards))].sort(), 'only the advertisers\' shards are asked');
    assert.is(filtered.partial, false);
    assert.ok(filtered.shards.some((o) => o.skipped), 'some shard skipped');

    // Removes and attribute changes give ids only: they go to every shard and reach the ad wherever it is.
    const removed = [ids[0]!, ids[1]!, ids[2]!, ids[3]!];
    position = laterPosition(position, await log.remove(removed));
    await single.remove(removed);
    const paused = [ids[10]!, ids[11]!];
    const pausedAttributes = [{ advertiser: advertiserOf(10), category: 0, active: false }, { advertiser: advertiserOf(11), category: 1, active: false }];
    position = laterPosition(position, await log.setAttributes(paused, pausedAttributes));
    await single.setAttributes(paused, pausedAttributes);
    assert.equal(Object.keys(position).length, shards, 'those writes reached every shard');
    const after = await router.search(queries, 1200, { readAfter: position, filter: { active: true } });
    assertIdentical(after.results, await single.search(queries, 1200, { filter: { active: true } }), 'after removes and pauses');
  });
});

test.run();
