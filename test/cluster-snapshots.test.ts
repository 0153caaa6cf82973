/**
 * Shard snapshots in the JetStream object store (lib/cluster/snapshots.ts) on a real nats-server:
 * a replica that starts loads the newest snapshot and replays only the log after it, ending equal
 * to one index that applied every write; a snapshot that fails its checksum or that the index
 * refuses is passed over for an older one or a full replay; one replica at a time snapshots a
 * shard (the lease), and only the newest `keep` stay.
 */
import { connect, type NatsConnection } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterMetrics, CorpusLog, ShardReplica, clusterNames, initCluster, shardOf, type SnapshotManifest } from '../lib';
import { readTrimPoint, trimShardLog } from '../lib/cluster/log-trim';
import { memberKey } from '../lib/cluster/membership';
import { snapshotName } from '../lib/cluster/snapshots';
import { NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { rejects } from './helpers/rejects';
import { until } from './helpers/shard-process';

const test = suite('cluster: snapshots');
const skip = natsServerMissing();
const dim = 8;
const shards = 2;
let nats: NatsDeployment;
let nc: NatsConnection;
let clusterCount = 0;

test.before(async () => {
  if (skip) return;
  nats = await NatsDeployment.single();
  nc = await connect({ servers: nats.servers });
});

test.after(async () => {
  if (skip) return;
  await nc.close();
  await nats.stop();
});

/** A fresh cluster, a writer, and the reference index that applies every write the log acknowledged. */
async function fixture() {
  const cluster = `snap${++clusterCount}`;
  await initCluster(nc, { cluster, shards, dim, membershipTtlMs: 2000 });
  const log = await CorpusLog.open(nc, cluster);
  const reference = new AdIndex({ dim });
  let next = 1;
  const write = async (count: number, seed: number) => {
    const ids = Array.from({ length: count }, () => BigInt(next++));
    const vectors = randomVectors(count, dim, seed);
    await log.upsert(ids, vectors);
    await reference.upsert(ids, vectors);
  };
  const remove = async (ids: bigint[]) => {
    await log.remove(ids);
    await reference.remove(ids);
  };
  const replicas: ShardReplica[] = [];
  const start = async (replicaId: string, options: Partial<Parameters<typeof ShardReplica.start>[1]> = {}) => {
    const replica = await ShardReplica.start(nc, { cluster, shard: 0, replicaId, snapshots: { everyMs: 0 }, ...options });
    replicas.push(replica);
    return replica;
  };
  const close = async () => {
    for (const r of replicas) await r.close();
    reference.close();
  };
  return { cluster, log, reference, write, remove, start, close };
}

async function withFixture(body: (f: Awaited<ReturnType<typeof fixture>>) => Promise<void>): Promise<void> {
  const f = await fixture();
  try {
    await body(f);
  } finally {
    await f.close();
  }
}

/** The replica holds exactly shard 0's live ads, with the reference's scores. */
async function assertEqualsLog(replica: ShardReplica, reference: AdIndex, lastSeq: number): Promise<void> {
  assert.ok(await replica.waitApplied(lastSeq, 10_000), `${replica.replicaId} applied ${replica.applied} < ${lastSeq}`);
  const mine = (await reference.eligibleIds({})).filter((id) => shardOf(id, shards) === 0);
  const query = randomVectors(1, dim, 99);
  const held = await replica.index.search(query, 5000);
  const expected = await reference.search(query, 5000, { filter: { ids: mine } });
  assert.is(held.counts[0], mine.length, `${replica.replicaId}: ads held`);
  assert.equal([...held.ids], [...expected.ids], `${replica.replicaId}: ids`);
  assert.equal([...held.scores], [...expected.scores], `${replica.replicaId}: scores`);
}

async function lastSequenceOfShard0(cluster: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const names = clusterNames(cluster);
  return (await jsm.streams.getMessage(names.logStream, { last_by_subj: names.shardSubject(0) })).seq;
}

test('a replica starts from the newest snapshot, replays only the log after it, and equals the log', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    for (let i = 0; i < 10; i++) await f.write(200, i);
    const first = await f.start('a');
    await assertEqualsLog(first, f.reference, await lastSequenceOfShard0(f.cluster));
    const manifest = (await first.snapshot())!;
    assert.is(manifest.sequence, first.applied);
    assert.is(manifest.ads, first.index.size);
    assert.is(await first.snapshot(), undefined, 'nothing applied since: no second snapshot');

    // After the snapshot: more ads, replaced ones and removes.
    await f.write(300, 50);
    await f.remove([3n, 4n, 5n, 6n, 7n, 8n]);
    const last = await lastSequenceOfShard0(f.cluster);
    const started = Date.now();
    const joined = await f.start('b');
    await assertEqualsLog(joined, f.reference, last);
    const stats = joined.stats();
    assert.is(stats.startedFromSnapshot, manifest.sequence);
    assert.is(stats.snapshotFallbacks, 0);
    // Only shard 0's messages after the snapshot: the 300-ad upsert's and the remove's parts.
    assert.is(stats.updatesApplied, 2, `updates replayed after the snapshot: ${stats.updatesApplied}`);
    assert.is(stats.snapshotSequence, manifest.sequence);
    console.log(`  joined from snapshot at ${manifest.sequence} + ${stats.updatesApplied} log messages in ${Date.now() - started} ms (${joined.index.size} ads)`);

    const metrics = new ClusterMetrics();
    metrics.watchReplica(joined);
    const text = await metrics.text();
    assert.match(text, new RegExp(`cangen_shard_snapshot_sequence\\{shard="0",replica="b"\\} ${manifest.sequence}\\n`));
    const age = Number(/cangen_shard_snapshot_age_seconds\{shard="0",replica="b"\} ([\d.e-]+)/.exec(text)?.[1]);
    assert.ok(age >= 0 && age < 60, `snapshot age ${age}`);
  });
});

test('a snapshot that fails its checksum, or that the index refuses, is passed over for an older one, then for a full replay', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    await f.write(400, 1);
    const taker = await f.start('taker', { snapshots: { everyMs: 0, keep: 5 } });
    await assertEqualsLog(taker, f.reference, await lastSequenceOfShard0(f.cluster));
    const good = (await taker.snapshot())!;
    await f.write(400, 2);
    const last = await lastSequenceOfShard0(f.cluster);
    await assertEqualsLog(taker, f.reference, last);

    // Two newer snapshots that must not load: bytes that differ from what the manifest hashed,
    // and a file whose checksum holds but which is no index file.
    const os = await nc.jetstream().views.os(clusterNames(f.cluster).snapshotBucket);
    const forge = async (sequence: number, bytes: Uint8Array, manifest: Partial<SnapshotManifest>) => {
      const m: SnapshotManifest = { ...good, sequence, createdAt: new Date().toISOString(), ...manifest };
      await os.putBlob({ name: snapshotName(0, sequence), metadata: { manifest: JSON.stringify(m) } }, bytes);
    };
    const garbage = new Uint8Array(4096).fill(7);
    const { createHash } = await import('node:crypto');
    await forge(last - 1, garbage, { bytes: garbage.length, sha256: 'ab'.repeat(32) });
    await forge(last, garbage, { bytes: garbage.length, sha256: createHash('sha256').update(garbage).digest('hex') });

    const fallback = await f.start('fallback');
    await assertEqualsLog(fallback, f.reference, last);
    assert.is(fallback.stats().snapshotFallbacks, 2);
    assert.is(fallback.stats().startedFromSnapshot, good.sequence);

    // With the good one gone too: a full replay, still equal to the log.
    await os.delete(snapshotName(0, good.sequence));
    const replayed = await f.start('replayed');
    await assertEqualsLog(replayed, f.reference, last);
    assert.is(replayed.stats().startedFromSnapshot, 0);
    assert.is(replayed.stats().snapshotFallbacks, 2);

    // A snapshot of another kind is passed over, not loaded into a replica of this kind.
    const other = await f.start('hnsw', { index: new AdIndex({ dim, kind: 'hnsw' }) });
    assert.is(other.stats().startedFromSnapshot, 0);
    assert.ok(other.stats().snapshotFallbacks >= 1);
  });
});

test('one replica at a time snapshots a shard (the lease), the lease passes on when it stops, and only `keep` snapshots stay', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    const periodic = { everyMs: 150, keep: 2, leaseMs: 600 };
    const a = await f.start('a', { snapshots: periodic });
    const b = await f.start('b', { snapshots: periodic });
    for (let i = 0; i < 6; i++) {
      await f.write(50, 10 + i);
      await new Promise((r) => setTimeout(r, 200));
    }
    await until(() => a.stats().snapshotsTaken + b.stats().snapshotsTaken >= 3, 5000, 'three snapshots');
    const [holder, other] = a.stats().snapshotsTaken > 0 ? [a, b] : [b, a];
    assert.is(other.stats().snapshotsTaken, 0, 'the replica without the lease took none');
    const os = await nc.jetstream().views.os(clusterNames(f.cluster).snapshotBucket);
    const kept = (await os.list()).filter((o) => !o.deleted && o.name.startsWith('shard.0.'));
    assert.ok(kept.length <= 2, `snapshots kept: ${kept.map((o) => o.name)}`);

    // The holder leaves (releasing its lease): the other takes over at its next change.
    await holder.close();
    await f.write(50, 30);
    await until(() => other.stats().snapshotsTaken > 0, 5000, 'the other replica snapshotting');
    assert.is(other.stats().snapshotSequence, other.applied);
    await assertEqualsLog(other, f.reference, await lastSequenceOfShard0(f.cluster));
  });
});

test('trimLog: the log is purged through the oldest snapshot kept, never past a registered replica; later starts need a snapshot', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    const names = clusterNames(f.cluster);
    const jsm = await nc.jetstreamManager();
    const config = await nc.jetstream().views.kv(names.configBucket);
    const members = await nc.jetstream().views.kv(names.membersBucket);
    const shardSequences = async () => {
      const out: number[] = [];
      const info = await jsm.streams.info(names.logStream);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(names.logStream, { seq }).catch(() => undefined);
        if (m?.subject === names.shardSubject(0)) out.push(seq);
      }
      return out;
    };
    for (let i = 0; i < 4; i++) await f.write(100, 100 + i);
    const trimming = await f.start('trimmer', { snapshots: { everyMs: 0, keep: 2, trimLog: true } });
    const all = await shardSequences();
    await assertEqualsLog(trimming, f.reference, all.at(-1)!);
    // A registered replica that has applied only the first two messages of the shard holds the trim back.
    await members.put(memberKey(0, 'laggard'), new TextEncoder().encode(JSON.stringify({ replicaId: 'laggard', shard: 0, subject: 'x', applied: all[1], health: 'catching-up', inflight: 0, lagMessages: 0, deadLetters: 0, updatedAt: Date.now() })));
    const first = (await trimming.snapshot())!;
    await f.write(100, 200);
    const second = (await trimming.snapshot())!;
    assert.is(await readTrimPoint(config, 0), all[1], 'held back by the laggard');
    assert.equal(await shardSequences(), (await shardSequences()).filter((seq) => seq > all[1]!));
    assert.ok(!(await shardSequences()).includes(all[0]!), 'the first messages are purged');

    // Without the laggard: through the oldest snapshot kept (of two), not the newest.
    await members.delete(memberKey(0, 'laggard'));
    await f.remove([1n, 2n, 3n]);
    const third = (await trimming.snapshot())!;
    assert.is(await readTrimPoint(config, 0), second.sequence);
    assert.ok(first.sequence < second.sequence && second.sequence < third.sequence);
    assert.ok((await shardSequences()).every((seq) => seq > second.sequence), 'the log keeps only what follows the oldest snapshot kept');

    // A new replica starts from a snapshot and equals the log; without snapshots it is refused.
    const joined = await f.start('joined');
    await assertEqualsLog(joined, f.reference, await lastSequenceOfShard0(f.cluster));
    assert.ok(joined.stats().startedFromSnapshot >= second.sequence);
    await rejects(() => f.start('no-snapshots', { snapshots: false }), 'ERR_SNAPSHOT', /trimmed through sequence \d+ and this replica was started with snapshots: false/);
  });
});

test('a replica that finds itself behind the log\'s trim point leaves the cluster and reports it', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    await f.write(50, 1);
    let fatal: Error | undefined;
    const behind = await f.start('behind', { snapshots: { everyMs: 100 }, onFatal: (error) => { fatal = error; } });
    await assertEqualsLog(behind, f.reference, await lastSequenceOfShard0(f.cluster));
    // Another process trimmed the log further than this replica has applied (as after a long partition).
    const names = clusterNames(f.cluster);
    await trimShardLog(await nc.jetstreamManager(), await nc.jetstream().views.kv(names.configBucket), names, 0, behind.applied + 100);
    await until(() => fatal !== undefined, 3000, 'the replica noticing');
    assert.is((fatal as Error & { code: string }).code, 'ERR_SNAPSHOT');
    assert.match(fatal!.message, /trimmed through/);
    assert.is(behind.health, 'stopping');
    assert.is(await (await nc.jetstream().views.kv(names.membersBucket)).get(memberKey(0, 'behind')).then((e) => e?.operation ?? 'none'), 'DEL');
  });
});

test('snapshot options are checked, and snapshot() on a replica without snapshots says why', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withFixture(async (f) => {
    await rejects(() => f.start('x', { snapshots: { everyMs: -1 } }), 'ERR_INVALID_ARGUMENT', /options\.snapshots\.everyMs/);
    await rejects(() => f.start('y', { snapshots: { keep: 0 } }), 'ERR_INVALID_ARGUMENT', /options\.snapshots\.keep/);
    await rejects(() => f.start('z', { snapshots: { every: 5 } as never }), 'ERR_INVALID_ARGUMENT', /every/);
    const plain = await f.start('plain', { snapshots: false });
    await rejects(() => plain.snapshot(), 'ERR_SNAPSHOT', /snapshots: false/);
  });
});

test.run();
