/**
 * No acknowledged write is lost: a stream of upserts and removes through a 3-node JetStream
 * cluster (replicated log) while `cangen shard` processes are SIGKILLed and restarted at random and
 * one nats-server node is killed and restarted, with snapshots every second and the log trimmed
 * behind them. At the end every replica's contents, asked of that replica directly, equal the
 * log's: the same ads with the same scores as one index that applied every acknowledged write.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, initCluster, laterPosition, shardOf, type LogPosition } from '../lib';
import { readTrimPoint } from '../lib/cluster/log-trim';
import { clusterNames } from '../lib/cluster/names';
import { retryTransient } from '../lib/cluster/transient';
import { decodeSearchReply, encodeSearchRequest } from '../lib/cluster/search-codec';
import { streamLeaders } from './helpers/cluster';
import { NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { randomVectors, rng } from './helpers/random';
import { shardProcess, startLines, until } from './helpers/shard-process';

const chaos = suite('cluster: random faults');
const skip = natsServerMissing();
const dim = 8;
const shards = 2;
const replicaIds = ['c0a', 'c0b', 'c1a', 'c1b'];
const shardOfReplica = (id: string) => Number(id[1]);
// Snapshots every second and the log trimmed behind them, so that restarted replicas start from a
// snapshot taken mid-stream and replay the rest, with the log's older part gone.
const snapshotEverySecond = ['--snapshot-every-s', '1', '--trim-log'];

/** Resolves once every replica of the stream is current (a restarted server caught up), within 30 s. */
async function streamCurrent(nc: NatsConnection, stream: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    // Timeouts are expected while the restarted server rejoins: ask again.
    const info = await nc.jetstreamManager().then((jsm) => jsm.streams.info(stream)).catch(() => undefined);
    const peers = info?.cluster?.replicas ?? [];
    if (info?.cluster?.leader && peers.length === 2 && peers.every((p) => p.current && !p.offline)) return;
    if (Date.now() > end) throw new Error(`the log stream's replicas were not current within 30 s: ${JSON.stringify(info?.cluster)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

chaos('writes go on while replicas are SIGKILLed and a JetStream node dies; every replica ends equal to the log', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const seed = Number(process.env.CANGEN_CHAOS_SEED ?? 7);
  const random = rng(seed);
  const nats = await NatsDeployment.cluster(3);
  const nc = await connect({ servers: nats.servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const children = new Map<string, ChildProcess>();
  const single = new AdIndex({ dim });
  let router: ClusterRouter | undefined;
  let stopWriter = async () => {};
  try {
    await initCluster(nc, { cluster: 'chaos', shards, dim, streamReplicas: 3, membershipTtlMs: 1500 });
    // A cluster just formed elects a leader per replicated stream (log, dead letters, catalog, buckets)
    // one after another: replicas started before that spend their start-up bound retrying.
    await streamLeaders(nc, 60_000);
    const log = await CorpusLog.open(nc, 'chaos', { retryForMs: 20_000 });
    for (const id of replicaIds) children.set(id, await shardProcess(nats.servers, 'chaos', shardOfReplica(id), id, snapshotEverySecond));
    router = await ClusterRouter.start(nc, { cluster: 'chaos' });

    // The writer: batches of upserts and removes over a pool of 300 ids, each applied to the
    // reference index once the log acknowledged it (writes are sequential, so in log order).
    let position: LogPosition = {};
    let writes = 0;
    let stop = false;
    let writer: Promise<void> = Promise.resolve();
    stopWriter = async () => {
      stop = true;
      await writer;
    };
    writer = (async () => {
      while (!stop || writes < 30) {
        const ids = [...new Set(Array.from({ length: 12 }, () => BigInt(5000 + Math.floor(random() * 300))))];
        if (random() < 0.7) {
          const vectors = randomVectors(ids.length, dim, seed * 1000 + writes);
          position = laterPosition(position, await log.upsert(ids, vectors));
          await single.upsert(ids, vectors);
        } else {
          position = laterPosition(position, await log.remove(ids));
          await single.remove(ids);
        }
        writes++;
        await new Promise((r) => setTimeout(r, 30));
      }
    })();

    // The faults: replica kills with restarts (4 by default, CANGEN_CHAOS_KILLS for longer runs), and
    // JetStream nodes killed and restarted (1, CANGEN_CHAOS_NODE_KILLS), spread over the kills.
    const killRounds = Number(process.env.CANGEN_CHAOS_KILLS ?? 4);
    const nodeKillEvery = Math.max(1, Math.floor(killRounds / Number(process.env.CANGEN_CHAOS_NODE_KILLS ?? 1)));
    let kills = 0;
    let nodeKills = 0;
    let fromSnapshot = 0;
    for (let round = 0; round < killRounds; round++) {
      await new Promise((r) => setTimeout(r, 300 + random() * 500));
      const victim = replicaIds[Math.floor(random() * replicaIds.length)]!;
      const child = children.get(victim)!;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      kills++;
      if (round % nodeKillEvery === 1 % nodeKillEvery) {
        nodeKills++;
        const node = nats.nodes.find((n) => !nc.getServer().includes(String(n.ports.client)))!;
        await node.kill();
        await new Promise((r) => setTimeout(r, 1500));
        await node.start();
        // One failure at a time, as a 3-way replicated stream promises to survive: the next
        // fault waits until the restarted server has caught up with the log again.
        await streamCurrent(nc, clusterNames('chaos').logStream);
      }
      const restarted = await shardProcess(nats.servers, 'chaos', shardOfReplica(victim), victim, snapshotEverySecond);
      if (/from the snapshot at sequence/.test(startLines.get(restarted) ?? '')) fromSnapshot++;
      children.set(victim, restarted);
    }
    await stopWriter();

    // Every replica serving again, then each asked directly for everything it holds.
    await until(() => replicaIds.every((id) => router!.replicas(shardOfReplica(id)).some((m) => m.replicaId === id && m.health === 'serving')), 20_000, 'every replica serving');
    const query = randomVectors(1, dim, seed + 1);
    const names = clusterNames('chaos');
    const live = await single.eligibleIds({});
    for (const id of replicaIds) {
      const shard = shardOfReplica(id);
      const request = encodeSearchRequest({ queries: query, dim, k: 400, minApplied: position[shard] ?? 0, waitMs: 10_000 });
      const reply = decodeSearchReply((await nc.request(names.searchSubject(id), request, { timeout: 15_000 })).data, 'ip');
      const mine = [...live].filter((ad) => shardOf(ad, shards) === shard);
      const expected = await single.search(query, 400, { filter: { ids: mine } });
      assert.is(reply.results.counts[0], mine.length, `${id}: ads held`);
      assert.equal([...reply.results.ids], [...expected.ids], `${id}: ids`);
      assert.equal([...reply.results.scores], [...expected.scores], `${id}: scores`);
      assert.ok(reply.applied >= (position[shard] ?? 0));
    }
    const { messages, retries } = log.stats();
    // Read through any leader election still settling after the node kills (reports only).
    const trimmed = await retryTransient(async () => {
      const config = await nc.jetstream().views.kv(names.configBucket, { bindOnly: true });
      return Promise.all([0, 1].map((shard) => readTrimPoint(config, shard)));
    }, 20_000);
    const stored = await retryTransient(async () => (await (await nc.jetstreamManager()).streams.info(names.logStream)).state.messages, 20_000);
    console.log(`  seed ${seed}: ${writes} writes acknowledged (${messages} log messages, ${retries} publish retries), ${kills} replica kills (${fromSnapshot} restarts from a snapshot) and ${nodeKills} JetStream node kill(s) survived; ` +
      `${live.length} live ads, every replica equal to the log; the log trimmed through sequences ${trimmed.join(' and ')}, ${stored} of its messages kept`);
  } finally {
    await stopWriter().catch(() => undefined); // after a failure: no write left running against a closed connection
    for (const child of children.values()) child.kill('SIGKILL');
    await router?.close();
    single.close();
    await nc.close();
    await nats.stop();
  }
});

chaos.run();
