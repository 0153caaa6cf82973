/**
 * Replicas as separate processes (`cangen shard`) on a real nats-server: one is killed with
 * SIGKILL while writes continue, the shard answers partial meanwhile, and the restarted process
 * replays the log and answers exactly again. Then a 3-node JetStream cluster with a replicated log
 * keeps acknowledging and applying writes while one node is killed and restarted.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, ShardReplica, initCluster, laterPosition, shardOf, type LogPosition } from '../lib';
import { clusterNames } from '../lib/cluster/names';
import { retryTransient } from '../lib/cluster/transient';
import { assertIdentical } from './helpers/cluster';
import { freePort, NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { shardProcess, until } from './helpers/shard-process';

const dim = 8;
const skip = natsServerMissing();


const processes = suite('cluster: replica processes killed and restarted');
const ctx = {} as { nats: NatsDeployment; nc: NatsConnection; children: ChildProcess[]; local: ShardReplica; router: ClusterRouter; single: AdIndex };

processes.before(async () => {
  if (skip) return;
  ctx.nats = await NatsDeployment.single();
  ctx.nc = await connect({ servers: ctx.nats.servers });
  ctx.children = [];
});

processes.after(async () => {
  if (skip) return;
  for (const child of ctx.children) child.kill('SIGKILL');
  await ctx.local?.close();
  await ctx.router?.close();
  ctx.single?.close();
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

processes('a SIGKILLed shard process: partial while down, caught up from the log after a restart', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await initCluster(ctx.nc, { cluster: 'proc', shards: 2, dim, membershipTtlMs: 1500 });
  const log = await CorpusLog.open(ctx.nc, 'proc');
  ctx.single = new AdIndex({ dim });
  const write = async (from: number, n: number, seed: number): Promise<LogPosition> => {
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i));
    const vectors = randomVectors(n, dim, seed);
    await ctx.single.upsert(ids, vectors);
    return log.upsert(ids, vectors);
  };
  let position = await write(1000, 500, 1);
  // --init with the cluster's own settings is harmless (the map exists and agrees).
  ctx.children.push(await shardProcess(ctx.nats.servers, 'proc', 0, 'p0', ['--init', `2:${dim}`]));
  ctx.local = await ShardReplica.start(ctx.nc, { cluster: 'proc', shard: 1, replicaId: 'local1' });
  ctx.router = await ClusterRouter.start(ctx.nc, { cluster: 'proc', deadlineMs: 3000 });
  const serving = (shard: number) => ctx.router.replicas(shard).some((m) => m.health === 'serving');
  await until(() => serving(0) && serving(1), 10_000, 'both shards serving');
  const queries = randomVectors(4, dim, 2);
  const before = await ctx.router.search(queries, 20, { readAfter: position });
  assert.is(before.partial, false);
  assert.is(before.shards[0]!.replicaId, 'p0');
  assertIdentical(before.results, await ctx.single.search(queries, 20), 'before the kill');

  // SIGKILL: no goodbye, its membership entry stays until the TTL; writes go on meanwhile.
  const victim = ctx.children.pop()!;
  const exited = new Promise((resolve) => victim.once('exit', resolve));
  victim.kill('SIGKILL');
  await exited;
  position = laterPosition(position, await write(2000, 300, 3));
  const removed = BigInt64Array.from({ length: 40 }, (_, i) => BigInt(1000 + i * 3));
  await ctx.single.remove(removed);
  position = laterPosition(position, await log.remove(removed));
  assert.ok(position[0]! > 0 && position[1]! > 0);
  const down = await ctx.router.search(queries, 20, { deadlineMs: 500 });
  assert.is(down.partial, true);
  assert.equal(down.missingShards, [0]);
  assert.match(down.shards[0]!.error!, /p0/);
  // Its membership entry is no longer refreshed: routers drop it after the TTL (1.5 s here).
  await until(() => ctx.router.replicas(0).length === 0, 5000, 'the killed replica leaving the membership view');

  // Restarted with the same id: it replays shard 0's log from the start and serves again.
  const started = Date.now();
  const metricsPort = await freePort();
  ctx.children.push(await shardProcess(ctx.nats.servers, 'proc', 0, 'p0', ['--metrics-port', String(metricsPort)]));
  await until(() => ctx.router.replicas(0).some((m) => m.replicaId === 'p0' && m.health === 'serving' && m.applied >= position[0]!), 10_000, 'p0 serving again');
  const after = await ctx.router.search(queries, 20, { readAfter: position, deadlineMs: 10_000 });
  const caughtUpMs = Date.now() - started;
  assert.is(after.partial, false, JSON.stringify(after.shards));
  assertIdentical(after.results, await ctx.single.search(queries, 20), 'after the restart');
  const ads = [...Array(500).keys()].map((i) => BigInt(1000 + i)).concat([...Array(300).keys()].map((i) => BigInt(2000 + i)));
  const expected = ads.filter((id) => shardOf(id, 2) === 0 && !removed.includes(id)).length;
  // Every ad of shard 0 is served by the restarted process: ask for all of them.
  const everything = await ctx.router.search(queries.subarray(0, dim), 1000, { readAfter: position });
  const fromShard0 = [...everything.results.row(0).ids].filter((id) => shardOf(id, 2) === 0).length;
  assert.is(fromShard0, expected);
  // The process's own metrics say the same.
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.ok(metrics.includes(`cangen_shard_applied_sequence{shard="0",replica="p0"} ${position[0]}\n`), metrics);
  assert.ok(metrics.includes(`cangen_shard_ads{shard="0",replica="p0"} ${expected}\n`));
  console.log(`  restarted shard process served read-your-writes after ${caughtUpMs} ms (tsx start-up included)`);
});

processes('a new replica process joins from the newest snapshot + the log after it and serves within 10 s', async () => {
  if (skip) return;
  const joinDim = 16;
  await initCluster(ctx.nc, { cluster: 'join', shards: 1, dim: joinDim, membershipTtlMs: 1500 });
  const log = await CorpusLog.open(ctx.nc, 'join');
  const single = new AdIndex({ dim: joinDim });
  const router = await ClusterRouter.start(ctx.nc, { cluster: 'join', deadlineMs: 5000 });
  try {
    let last = 0;
    const write = async (batch: number) => {
      const ids = BigInt64Array.from({ length: 200 }, (_, i) => BigInt(batch * 200 + i));
      const vectors = randomVectors(200, joinDim, batch);
      await single.upsert(ids, vectors);
      last = (await log.upsert(ids, vectors))[0]!;
    };
    for (let b = 0; b < 150; b++) await write(b);
    // The first replica snapshots every second once it serves (it holds the lease: it is alone).
    ctx.children.push(await shardProcess(ctx.nats.servers, 'join', 0, 'j0', ['--snapshot-every-s', '1']));
    const os = await ctx.nc.jetstream().views.os(clusterNames('join').snapshotBucket);
    const snapshotted = last;
    const snapshotSeq = async () => Math.max(0, ...(await os.list()).filter((o) => !o.deleted).map((o) => Number(o.name.split('.').pop())));
    const end = Date.now() + 15_000;
    while ((await snapshotSeq()) < snapshotted) {
      assert.ok(Date.now() < end, 'no snapshot of the first 150 messages within 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    // j0 leaves (no later snapshot), writes go on (new ads and removes), then a new replica joins.
    const j0 = ctx.children.pop()!;
    const exited = new Promise((resolve) => j0.once('exit', resolve));
    j0.kill('SIGKILL');
    await exited;
    for (let b = 150; b < 160; b++) await write(b);
    const removed = BigInt64Array.from({ length: 100 }, (_, i) => BigInt(i * 7));
    await single.remove(removed);
    last = (await log.remove(removed))[0]!;
    const seqAtJoin = await snapshotSeq();
    const started = Date.now();
    const metricsPort = await freePort();
    ctx.children.push(await shardProcess(ctx.nats.servers, 'join', 0, 'j1', ['--metrics-port', String(metricsPort), '--snapshot-every-s', '0']));
    await until(() => router.replicas(0).some((m) => m.replicaId === 'j1' && m.health === 'serving' && m.applied >= last), 10_000, 'j1 serving');
    const joinedMs = Date.now() - started;
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`${name}\\{shard="0",replica="j1"\\} ([\\d.e+-]+)`).exec(metrics)?.[1]);
    // It started from a snapshot and applied only what came after it.
    assert.is(value('cangen_shard_snapshot_sequence'), seqAtJoin);
    assert.is(value('cangen_shard_updates_applied'), last - seqAtJoin, metrics);
    assert.is(value('cangen_shard_ads'), single.size);
    // Answers from the joined replica (the only one alive) equal the single index.
    const queries = randomVectors(3, joinDim, 77);
    const answer = await router.search(queries, 50, { readAfter: { 0: last } });
    assert.is(answer.shards[0]!.replicaId, 'j1');
    assertIdentical(answer.results, await single.search(queries, 50), 'the joined replica');
    console.log(`  a new replica process joined from a snapshot at ${seqAtJoin} (${single.size + removed.length - 2000} ads then) + ${last - seqAtJoin} log messages and served in ${joinedMs} ms (tsx start-up included; bound 10 s)`);
  } finally {
    await router.close();
    single.close();
  }
});

processes('a 3-node JetStream cluster: writes are acknowledged and applied while one node is killed and restarted', async () => {
  if (skip) return;
  const nats = await NatsDeployment.cluster(3);
  const nc = await connect({ servers: nats.servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  let replica: ShardReplica | undefined;
  try {
    await initCluster(nc, { cluster: 'ha', shards: 1, dim, streamReplicas: 3 });
    const info = await (await nc.jetstreamManager()).streams.info(clusterNames('ha').logStream);
    assert.is(info.config.num_replicas, 3);
    replica = await ShardReplica.start(nc, { cluster: 'ha', shard: 0, replicaId: 'h0', log: (line) => process.env.CANGEN_TEST_VERBOSE && console.log(line) });
    // While the stream elects a new leader (a few seconds), publishes are refused: the writer retries them.
    const log = await CorpusLog.open(nc, 'ha', { retryForMs: 20_000 });
    const acknowledged: bigint[] = [];
    let last = 0;
    let slowestMs = 0;
    const writeBatch = async (b: number) => {
      const ids = BigInt64Array.from({ length: 20 }, (_, i) => BigInt(b * 100 + i));
      const since = Date.now();
      last = (await log.upsert(ids, randomVectors(20, dim, b)))[0]!;
      slowestMs = Math.max(slowestMs, Date.now() - since);
      acknowledged.push(...ids);
    };
    for (let b = 0; b < 5; b++) await writeBatch(b);
    // Kill a node other than the one this client is connected to, so the test sees the stream's fault tolerance.
    const victim = nats.nodes.find((n) => !nc.getServer().includes(String(n.ports.client)))!;
    await victim.kill();
    for (let b = 5; b < 10; b++) await writeBatch(b);
    await victim.start();
    for (let b = 10; b < 15; b++) await writeBatch(b);
    const { messages, retries } = log.stats();
    console.log(`  3-node JetStream, one node killed and restarted: ${acknowledged.length} ads acknowledged in ${messages} messages, ${retries} publish retries, slowest write ${slowestMs} ms`);
    assert.is(messages, 15);
    // Retried publishes were not logged twice: the stream holds exactly the 15 messages.
    const stream = await retryTransient(async () => (await nc.jetstreamManager()).streams.info(clusterNames('ha').logStream), 20_000);
    assert.is(stream.state.messages, 15);
    assert.ok(await replica.waitApplied(last, 15_000), `applied ${replica.applied} of ${last}`);
    assert.is(replica.index.size, acknowledged.length);
    const stored = await replica.index.eligibleIds({});
    assert.equal([...stored].sort((a, b) => (a < b ? -1 : 1)), acknowledged.sort((a, b) => (a < b ? -1 : 1)));
  } finally {
    await replica?.close();
    await nc.close();
    await nats.stop();
  }
});

processes.run();
