/**
 * The sharded corpus on real nats-server processes (test/helpers/nats-server.ts): shard hash and
 * message formats, then a 4-shard x 2-replica deployment checked against one AdIndex holding every
 * ad and a float64 brute force, read-your-writes, removes, dead letters, deadlines and hedging.
 */
import { connect, type NatsConnection } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AdIndex, ClusterMetrics, ClusterRouter, CorpusLog, ShardReplica, adIdHash, clusterNames, decodeUpdate, encodeUpdate, initCluster, laterPosition,
  MalformedMessageError, shardOf, type ClusterSearchResult, type LogPosition, type SearchResults,
} from '../lib';
import { decodeSearchReply, decodeSearchRequest, encodeSearchReply, encodeSearchRequest } from '../lib/cluster/search-codec';
import { memberKey, membersBucket } from '../lib/cluster/membership';
import { assertIdentical } from './helpers/cluster';
import { NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { assertExact, bruteForce, offsetsOf } from './helpers/reference';
import { rejects } from './helpers/rejects';

/** FNV-1a 32 written out over BigInt arithmetic, sharing nothing with lib/cluster/shard-hash.ts. */
function referenceHash(id: bigint): number {
  let h = 2166136261n;
  let v = BigInt.asUintN(64, id);
  for (let b = 0; b < 8; b++) {
    h ^= v & 0xffn;
    h = (h * 16777619n) % 2n ** 32n;
    v >>= 8n;
  }
  return Number(h);
}

const formats = suite('cluster: shard hash and message formats');

formats('the shard hash is FNV-1a 32 of the id in little-endian bytes, stable and balanced', () => {
  // Worked out once outside JavaScript (Python integers) and pinned: the hash must never change.
  assert.is(adIdHash(0n), 0x9be17165);
  assert.is(adIdHash(1n), 0x3e801244);
  for (const id of [1n, 255n, 256n, 123456789012345n, (1n << 63n) - 1n, 10_000_000_000n]) assert.is(adIdHash(id), referenceHash(id), `id ${id}`);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[shardOf(BigInt(1_000_000 + i), 4)]!++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `shard sizes ${counts}`);
});

formats('log messages round-trip, and every malformed form is refused with a reason', () => {
  const ids = new BigInt64Array([5n, 7n]);
  const vectors = new Float32Array([1, 2, 3, 4, 5, 6]);
  const attributes = new Uint32Array([1, 0, 9, 8, 7, 6, 0, 2, 1, 2, 3, 4]);
  const bytes = encodeUpdate({ op: 'upsert', ids, dim: 3, vectors, attributes });
  const back = decodeUpdate(bytes.slice());
  assert.equal([back.op, [...back.ids], [...back.vectors!], [...back.attributes!], back.dim], ['upsert', [5n, 7n], [...vectors], [...attributes], 3]);
  assert.equal([...decodeUpdate(encodeUpdate({ op: 'remove', ids })).ids], [5n, 7n]);
  // NATS hands payloads over as Buffers at any offset of a shared pool.
  const pooled = Buffer.concat([Buffer.alloc(3, 0xff), bytes, Buffer.alloc(5, 0xff)]).subarray(3, 3 + bytes.length);
  const fromPool = decodeUpdate(pooled);
  assert.equal([[...fromPool.ids], [...fromPool.vectors!], [...fromPool.attributes!]], [[5n, 7n], [...vectors], [...attributes]]);
  const bad: [Uint8Array, RegExp][] = [
    [new Uint8Array(3), /at least 16 bytes/],
    [new TextEncoder().encode('{"op":"upsert","ids":[1]}'), /starting with 'CGUP'/],
    [Object.assign(bytes.slice(), { 4: 9 }), /format version 1 but received 9/],
    [Object.assign(bytes.slice(), { 5: 7 }), /operation 1, 2 or 3/],
    [bytes.slice(0, bytes.length - 4), /Expected 104 bytes for upsert of 2 ads \(dim 3\) but received 100/],
    [Object.assign(bytes.slice(), { [16 + 16 + 24 + 4]: 5 }), /budget 0, 1 or 2 in attributes row 0/],
  ];
  const negative = bytes.slice();
  new DataView(negative.buffer).setBigInt64(16, -3n, true);
  bad.push([negative, /ids >= 0 but id 0 is -3/]);
  for (const [message, pattern] of bad) {
    try {
      decodeUpdate(message);
      assert.unreachable(`accepted ${pattern}`);
    } catch (error) {
      assert.instance(error, MalformedMessageError);
      assert.is((error as MalformedMessageError).code, 'ERR_MALFORMED_MESSAGE');
      assert.match((error as Error).message, pattern);
    }
  }
});

formats('search requests and replies round-trip (filters with ids included)', () => {
  const request = decodeSearchRequest(encodeSearchRequest({ queries: new Float32Array([1, 2, 3, 4]), dim: 2, k: 3, minApplied: 42, waitMs: 7, filter: { ids: [3n, 9n], geos: [1] } }));
  assert.equal([[...request.queries], request.k, request.dim, request.minApplied, request.waitMs], [[1, 2, 3, 4], 3, 2, 42, 7]);
  assert.equal([...(request.filter!.ids as BigInt64Array)], [3n, 9n]);
  assert.equal(request.filter!.geos, [1]);
  const replyBytes = encodeSearchReply({ k: 2, queries: 1, counts: new Uint32Array([1]), ids: new BigInt64Array([4n, -1n]), scores: new Float32Array([0.5, NaN]) } as SearchResults, 17);
  const reply = decodeSearchReply(Buffer.concat([Buffer.alloc(1), replyBytes]).subarray(1), 'ip');
  assert.equal([reply.applied, [...reply.results.row(0).ids], [...reply.results.row(0).scores]], [17, [4n], [0.5]]);
});

/** The state the cluster should hold: every live ad, kept independently of any index. */
class ReferenceCorpus {
  readonly vectors = new Map<bigint, Float32Array>();

  constructor(readonly dim: number) {}

  upsert(ids: BigInt64Array, vectors: Float32Array): void {
    ids.forEach((id, i) => this.vectors.set(id, vectors.slice(i * this.dim, (i + 1) * this.dim)));
  }

  remove(ids: BigInt64Array): void {
    for (const id of ids) this.vectors.delete(id);
  }

  /** Ads of the shards kept (all by default), as flat arrays for the brute force. */
  arrays(keep: (id: bigint) => boolean = () => true): { ids: BigInt64Array; vectors: Float32Array } {
    const entries = [...this.vectors].filter(([id]) => keep(id));
    const ids = BigInt64Array.from(entries, ([id]) => id);
    const vectors = new Float32Array(entries.length * this.dim);
    entries.forEach(([, v], i) => vectors.set(v, i * this.dim));
    return { ids, vectors };
  }
}


const dim = 16;
const shards = 4;
const cluster = suite('cluster: 4 shards x 2 replicas on one nats-server');
const skip = natsServerMissing();
interface Context {
  nats: NatsDeployment;
  nc: NatsConnection;
  replicas: ShardReplica[];
  router: ClusterRouter;
  log: CorpusLog;
  reference: ReferenceCorpus;
  single: AdIndex;
  position: LogPosition;
}
const ctx = {} as Context;

async function searchBoth(queries: Float32Array, k: number, readAfter: LogPosition): Promise<ClusterSearchResult> {
  const routed = await ctx.router.search(queries, k, { readAfter, deadlineMs: 5000 });
  assert.is(routed.partial, false, `partial: ${JSON.stringify(routed.shards)}`);
  const expected = await ctx.single.search(queries, k);
  assertIdentical(routed.results, expected, `k=${k}`);
  const { ids, vectors } = ctx.reference.arrays();
  assertExact(routed.results, bruteForce('ip', ids, vectors, queries, dim, k), 'ip', offsetsOf(ids, dim), vectors, queries, dim);
  return routed;
}

cluster.before(async () => {
  if (skip) return;
  ctx.nats = await NatsDeployment.single();
  ctx.nc = await connect({ servers: ctx.nats.servers });
  ctx.reference = new ReferenceCorpus(dim);
  ctx.single = new AdIndex({ dim });
  ctx.position = {};
});

cluster.after(async () => {
  if (skip) return;
  await Promise.all((ctx.replicas ?? []).map((r) => r.close()));
  await ctx.router?.close();
  ctx.single?.close();
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

cluster('without a shard map, routers and writers refuse with ERR_NO_SHARD_MAP and say what to do', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  ctx.router = await ClusterRouter.start(ctx.nc, { cluster: 'ads', shardMapPollMs: 50 });
  await rejects(ctx.router.search(new Float32Array(dim), 10), 'ERR_NO_SHARD_MAP', /No shard map is known for cluster 'ads' .*initCluster\(\)/);
  await rejects(CorpusLog.open(ctx.nc, 'ads'), 'ERR_NO_SHARD_MAP', /KV bucket 'cangen_ads_config'/);
  await rejects(ShardReplica.start(ctx.nc, { cluster: 'ads', shard: 0, replicaId: 'r0' }), 'ERR_NO_SHARD_MAP', /initialise the cluster first/);
});

cluster('init, 8 replicas, 3000 ads: answers equal one index and the float64 brute force', async () => {
  if (skip) return;
  const map = await initCluster(ctx.nc, { cluster: 'ads', shards, dim, membershipTtlMs: 3000 });
  assert.is(map.shards, shards);
  assert.equal((await initCluster(ctx.nc, { cluster: 'ads', shards, dim })).createdAt, map.createdAt, 'a second init keeps the map');
  await rejects(initCluster(ctx.nc, { cluster: 'ads', shards: 8, dim }), 'ERR_SHARD_MAP', /already has shards 4, not 8: resharding is not supported/);
  ctx.log = await CorpusLog.open(ctx.nc, 'ads');
  // Half the ads go in before the replicas start (they replay the log), half after (they follow it).
  const n = 3000;
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(10_000_000_000 + i * 7919));
  const vectors = randomVectors(n, dim, 11);
  const first = await ctx.log.upsert(ids.subarray(0, n / 2), vectors.subarray(0, (n / 2) * dim));
  assert.equal(Object.keys(first).map(Number), [0, 1, 2, 3]);
  ctx.replicas = [];
  for (let s = 0; s < shards; s++) {
    for (const r of ['a', 'b']) ctx.replicas.push(await ShardReplica.start(ctx.nc, { cluster: 'ads', shard: s, replicaId: `s${s}${r}`, heartbeatMs: 200 }));
  }
  const second = await ctx.log.upsert(ids.subarray(n / 2), vectors.subarray((n / 2) * dim));
  ctx.position = laterPosition(first, second);
  ctx.reference.upsert(ids, vectors);
  await ctx.single.upsert(ids, vectors);
  // Every replica holds exactly its shard's ads.
  for (const replica of ctx.replicas) {
    assert.ok(await replica.waitApplied(ctx.position[replica.shard]!, 5000), `${replica.replicaId} caught up`);
    const expected = [...ids].filter((id) => shardOf(id, shards) === replica.shard).length;
    assert.is(replica.index.size, expected, `${replica.replicaId} size`);
  }
  const until = Date.now() + 5000;
  while ([0, 1, 2, 3].some((s) => ctx.router.replicas(s).filter((m) => m.health === 'serving').length < 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const queries = randomVectors(12, dim, 12);
  for (const k of [1, 10, 100]) await searchBoth(queries, k, ctx.position);
  // k beyond the corpus: padded, never an error.
  const all = await ctx.router.search(queries.subarray(0, dim), n + 50, { deadlineMs: 5000 });
  assert.is(all.results.counts[0], n);
  assert.is(all.results.ids[n], -1n);
});

cluster('writes then read-your-writes: replaced embeddings, removes and attribute filters', async () => {
  if (skip) return;
  const queries = randomVectors(6, dim, 21);
  const { ids: live } = ctx.reference.arrays();
  // The ads nearest the first query move far away, some others are removed, new ones arrive.
  const top = (await ctx.single.search(queries.subarray(0, dim), 20)).row(0).ids.slice();
  const moved = top.subarray(0, 10);
  const movedVectors = randomVectors(10, dim, 22).map((v) => v * 0.01);
  const removed = BigInt64Array.from([...top.subarray(10, 20), live[0]!, live[1]!]);
  const added = BigInt64Array.from({ length: 40 }, (_, i) => BigInt(90_000_000_000 + i));
  const addedVectors = randomVectors(40, dim, 23);
  let position = await ctx.log.upsert(moved, movedVectors);
  position = laterPosition(position, await ctx.log.remove(removed));
  position = laterPosition(position, await ctx.log.upsert(added, addedVectors, Array.from({ length: 40 }, (_, i) => ({ geo: i % 2 }))));
  ctx.reference.upsert(moved, movedVectors);
  ctx.reference.remove(removed);
  ctx.reference.upsert(added, addedVectors);
  await ctx.single.upsert(moved, movedVectors);
  await ctx.single.remove(removed);
  await ctx.single.upsert(added, addedVectors, Array.from({ length: 40 }, (_, i) => ({ geo: i % 2 })));
  // Read-your-writes, asked at once: the replicas wait for the position, the answer has the writes.
  const routed = await searchBoth(queries, 50, position);
  for (const id of removed) assert.not.ok(routed.results.ids.includes(id), `removed ${id} came back`);
  ctx.position = laterPosition(ctx.position, position);
  // A filter travels to the shards: only the new ads with geo 1.
  const filtered = await ctx.router.search(queries, 30, { readAfter: position, filter: { geos: [1] }, deadlineMs: 5000 });
  assertIdentical(filtered.results, await ctx.single.search(queries, 30, { filter: { geos: [1] } }), 'geo filter');
  assert.is(filtered.results.counts[0], 20);
  // Attribute changes go through the log too: pausing ads removes them from active-only answers.
  const paused = added.subarray(0, 5);
  const after = await ctx.log.setAttributes(paused, Array.from({ length: 5 }, () => ({ active: false })));
  await ctx.single.setAttributes(paused, Array.from({ length: 5 }, () => ({ active: false })));
  const active = await ctx.router.search(queries, 30, { readAfter: after, filter: { active: true, geos: [0, 1] }, deadlineMs: 5000 });
  assertIdentical(active.results, await ctx.single.search(queries, 30, { filter: { active: true, geos: [0, 1] } }), 'active filter');
  ctx.position = laterPosition(ctx.position, after);
});

cluster('read-your-writes for a sequence no replica reaches: the shard is reported missing at the deadline, the others answer', async () => {
  if (skip) return;
  const started = Date.now();
  const routed = await ctx.router.search(randomVectors(2, dim, 25), 10, { readAfter: { 0: 1e9 }, deadlineMs: 300 });
  const took = Date.now() - started;
  assert.ok(took >= 290 && took < 1000, `answered after ${took} ms`);
  assert.equal(routed.missingShards, [0]);
  assert.match(routed.shards[0]!.error!, /no answer within the deadline/);
  assert.equal(routed.shards.slice(1).map((s) => s.answered), [true, true, true]);
  // The replica's own refusal, as a router sees it when its wait ends before the router's deadline.
  const replica = ctx.replicas.find((r) => r.shard === 0)!;
  const reply = await ctx.nc.request(clusterNames('ads').searchSubject(replica.replicaId),
    encodeSearchRequest({ queries: new Float32Array(dim), dim, k: 1, minApplied: 1e9, waitMs: 50 }), { timeout: 2000 });
  assert.throws(() => decodeSearchReply(reply.data, 'ip'), /answered ERR_CLUSTER: Replica s0a of shard 0 has applied sequence \d+, not 1000000000, after waiting 50 ms/);
});

cluster('bad writes are refused before anything is published, bad searches before any fan-out', async () => {
  if (skip) return;
  await rejects(ctx.router.search(new Float32Array(dim).fill(Number.NaN), 5), 'ERR_NON_FINITE', /finite queries/);
  await rejects(ctx.router.search(new Float32Array(dim + 1), 5), 'ERR_DIMENSION_MISMATCH', /dim/);
  await rejects(ctx.router.search(new Float32Array(dim), 0), 'ERR_INVALID_ARGUMENT', /for k/);
  await rejects(ctx.router.search(new Float32Array(dim), 5, { filter: { geo: [1] } as never }), 'ERR_INVALID_ARGUMENT', /Unknown option 'geo' in options.filter \(did you mean 'geos'\?\)/);
  await rejects(ctx.router.search(new Float32Array(dim), 5, { readAfter: { 0: -1 } }), 'ERR_INVALID_ARGUMENT', /options.readAfter\[0\]/);
  await rejects(ctx.router.search(new Float32Array(dim), 5, { deadlineMs: 0 }), 'ERR_INVALID_ARGUMENT', /options.deadlineMs/);
  await rejects(ctx.log.upsert([1, 2], new Float32Array(2 * dim).fill(Number.NaN)), 'ERR_NON_FINITE', /finite embeddings/);
  await rejects(ctx.log.upsert([1, 1], new Float32Array(2 * dim)), 'ERR_DUPLICATE_ID', /1 repeats: nothing was written/);
  await rejects(ctx.log.upsert([1], new Float32Array(dim + 1)), 'ERR_DIMENSION_MISMATCH', /dim/);
});

cluster('a malformed log message goes to the dead-letter subject; replicas count it and go on', async () => {
  if (skip) return;
  const names = clusterNames('ads');
  const js = ctx.nc.jetstream();
  const garbage = new TextEncoder().encode('not a cangen update');
  const bad = await js.publish(names.shardSubject(2), garbage);
  const wrongDim = await js.publish(names.shardSubject(2), encodeUpdate({ op: 'upsert', ids: new BigInt64Array([77n]), dim: 3, vectors: new Float32Array(3), attributes: new Uint32Array([1, 0, 0, 0, 0, 0]) }));
  const id = [...Array(100).keys()].map((i) => BigInt(95_000_000_000 + i)).find((i) => shardOf(i, shards) === 2)!;
  const vector = randomVectors(1, dim, 31);
  const good = await ctx.log.upsert([id], vector);
  assert.ok(good[2]! > wrongDim.seq && wrongDim.seq > bad.seq);
  ctx.reference.upsert(BigInt64Array.of(id), vector);
  await ctx.single.upsert([id], vector);
  const shard2 = ctx.replicas.filter((r) => r.shard === 2);
  for (const replica of shard2) {
    assert.ok(await replica.waitApplied(good[2]!, 5000));
    assert.is(replica.stats().deadLetters, 2, `${replica.replicaId} dead letters`);
    assert.is(replica.health, 'serving');
  }
  // Both replicas rejected both messages; the dead-letter stream keeps one copy of each.
  const jsm = await ctx.nc.jetstreamManager();
  const info = await jsm.streams.info(names.deadLetterStream);
  assert.is(info.state.messages, 2);
  const first = await jsm.streams.getMessage(names.deadLetterStream, { seq: 1 });
  assert.is(first.header.get('Cangen-Sequence'), String(bad.seq));
  assert.match(first.header.get('Cangen-Reason'), /ERR_MALFORMED_MESSAGE: Expected a corpus update starting with 'CGUP'/);
  assert.equal(first.data, garbage);
  const second = await jsm.streams.getMessage(names.deadLetterStream, { seq: 2 });
  assert.match(second.header.get('Cangen-Reason'), /ERR_DIMENSION_MISMATCH: Expected embeddings of dim 16 but the update has dim 3/);
  await searchBoth(randomVectors(4, dim, 32), 20, good);
  ctx.position = laterPosition(ctx.position, good);
});

cluster('metrics: per replica and per router, read at scrape time', async () => {
  if (skip) return;
  const metrics = new ClusterMetrics();
  for (const replica of ctx.replicas) metrics.watchReplica(replica);
  metrics.watchRouter(ctx.router);
  assert.throws(() => metrics.watchRouter(ctx.router), /one router per ClusterMetrics/);
  const before = ctx.router.stats();
  await ctx.router.search(randomVectors(1, dim, 71), 5, { deadlineMs: 5000 });
  const text = await metrics.text();
  const value = (series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.slice(series.length + 1));
  assert.is(value('cangen_router_searches_total'), before.searches + 1);
  assert.is(value('cangen_router_partial_answers_total'), before.partialAnswers);
  for (const r of ctx.replicas) {
    const labels = `{shard="${r.shard}",replica="${r.replicaId}"}`;
    assert.is(value(`cangen_shard_applied_sequence${labels}`), r.applied);
    assert.is(value(`cangen_shard_ads${labels}`), r.index.size);
    assert.is(value(`cangen_shard_lag_messages${labels}`), 0);
    assert.is(value(`cangen_shard_serving${labels}`), 1);
    assert.is(value(`cangen_shard_dead_letters${labels}`), r.shard === 2 ? 2 : 0);
  }
  assert.is(value('cangen_router_shard_duration_seconds_count{shard="0",outcome="answered"}'), 1);
  assert.is(value('cangen_router_search_duration_seconds_count{answer="full"}'), 1);
});

cluster('a replica whose log consumer is deleted on the server re-creates it and applies on, in order', async () => {
  if (skip) return;
  await initCluster(ctx.nc, { cluster: 'resume', shards: 1, dim });
  const log = await CorpusLog.open(ctx.nc, 'resume');
  const notices: string[] = [];
  const replica = await ShardReplica.start(ctx.nc, { cluster: 'resume', shard: 0, replicaId: 'res0', pullExpiresMs: 2000, log: (line) => notices.push(line) });
  try {
    const first = await log.upsert([1, 2], randomVectors(2, dim, 81));
    assert.ok(await replica.waitApplied(first[0]!, 5000));
    const jsm = await ctx.nc.jetstreamManager();
    const stream = clusterNames('resume').logStream;
    for await (const consumer of jsm.consumers.list(stream)) await jsm.consumers.delete(stream, consumer.name);
    const started = Date.now();
    await log.remove([1]);
    const last = await log.upsert([3], randomVectors(1, dim, 82));
    assert.ok(await replica.waitApplied(last[0]!, 15_000), `applied ${replica.applied} of ${last[0]}`);
    assert.equal([...(await replica.index.eligibleIds({}))].sort(), [2n, 3n]);
    assert.ok(notices.some((line) => /ordered_consumer_recreated/.test(line)), notices.join('\n'));
    console.log(`  log consumer deleted on the server: re-created and caught up in ${Date.now() - started} ms (pulls of 2 s)`);
  } finally {
    await replica.close();
  }
});

/** Registers a replica that never answers (a hung process), advertising itself as the most caught up so routers pick it first. */
async function hungReplica(shard: number, replicaId: string): Promise<() => Promise<void>> {
  const names = clusterNames('ads');
  const subscription = ctx.nc.subscribe(names.searchSubject(replicaId), { callback: () => {} });
  const kv = await membersBucket(ctx.nc, 'ads');
  const entry = { replicaId, shard, subject: names.searchSubject(replicaId), applied: 1e12, health: 'serving', inflight: 0, lagMessages: 0, deadLetters: 0, updatedAt: Date.now() };
  await kv.put(memberKey(shard, replicaId), new TextEncoder().encode(JSON.stringify(entry)));
  const until = Date.now() + 3000;
  while (!ctx.router.replicas(shard).some((m) => m.replicaId === replicaId) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  return async () => {
    subscription.unsubscribe();
    await kv.delete(memberKey(shard, replicaId));
  };
}

cluster('a hung replica: without hedging the shard misses the deadline; hedging after 30 ms answers in full', async () => {
  if (skip) return;
  const release = await hungReplica(1, 'hung1');
  const queries = randomVectors(3, dim, 41);
  const expected = await ctx.single.search(queries, 10);
  try {
    const started = Date.now();
    const slow = await ctx.router.search(queries, 10, { deadlineMs: 250 });
    const took = Date.now() - started;
    // Bounded by the deadline, with room for a loaded CI machine's timers.
    assert.ok(took >= 240 && took < 1000, `answered after ${took} ms`);
    assert.is(slow.partial, true);
    assert.equal(slow.missingShards, [1]);
    assert.match(slow.shards[1]!.error!, /no answer within the deadline/);
    // Wait out the failure penalty, so that the hung replica is chosen first again.
    await new Promise((r) => setTimeout(r, 1100));
    const counted = ctx.router.stats();
    const hedged = await ctx.router.search(queries, 10, { deadlineMs: 1000, hedgeAfterMs: 30 });
    const stats = ctx.router.stats();
    assert.is(stats.hedgesWon - counted.hedgesWon, 1);
    assert.ok(stats.hedgesSent - counted.hedgesSent >= 1);
    assert.is(stats.partialAnswers, counted.partialAnswers);
    assert.is(hedged.partial, false);
    assert.is(hedged.shards[1]!.hedged, true);
    assert.equal(hedged.shards[1]!.asked.length, 2);
    assert.is(hedged.shards[1]!.asked[0], 'hung1');
    assertIdentical(hedged.results, expected, 'hedged');
  } finally {
    await release();
  }
});

cluster('a shard with every replica down answers within the deadline, flagged partial, with the other shards exact', async () => {
  if (skip) return;
  for (const replica of ctx.replicas.filter((r) => r.shard === 3)) await replica.close();
  ctx.replicas = ctx.replicas.filter((r) => r.shard !== 3);
  const release = await hungReplica(3, 'hung3');
  try {
    const queries = randomVectors(5, dim, 51);
    const started = Date.now();
    const routed = await ctx.router.search(queries, 25, { deadlineMs: 300 });
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 1000, `answered after ${took} ms`);
    assert.is(routed.partial, true);
    assert.equal(routed.missingShards, [3]);
    const { ids, vectors } = ctx.reference.arrays((id) => shardOf(id, shards) !== 3);
    assertExact(routed.results, bruteForce('ip', ids, vectors, queries, dim, 25), 'ip', offsetsOf(ids, dim), vectors, queries, dim);
  } finally {
    await release();
  }
  // No replica at all: the shard is reported at once, not awaited.
  const until = Date.now() + 3000;
  while (ctx.router.replicas(3).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  const started = Date.now();
  const routed = await ctx.router.search(randomVectors(1, dim, 52), 5, { deadlineMs: 2000 });
  assert.ok(Date.now() - started < 1000);
  assert.equal(routed.missingShards, [3]);
  assert.match(routed.shards[3]!.error!, /no serving replica/);
});

cluster('an approximate kind (IVF-Flat) per shard: recall within 0.01 of one IVF-Flat index over every ad', async () => {
  if (skip) return;
  await initCluster(ctx.nc, { cluster: 'ann', shards, dim });
  const log = await CorpusLog.open(ctx.nc, 'ann');
  // Over 4096 ads per shard, so that no shard answers exactly from its stored vectors.
  const n = 24_000;
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
  const vectors = randomVectors(n, dim, 61);
  const sample = randomVectors(4000, dim, 63);
  const ivf = { dim, kind: 'ivf-flat' as const, nlist: 64, nprobe: 8 };
  const trained = async () => {
    const index = new AdIndex(ivf);
    await index.train(sample);
    return index;
  };
  const replicas = await Promise.all([0, 1, 2, 3].map(async (s) => ShardReplica.start(ctx.nc, { cluster: 'ann', shard: s, replicaId: `ann${s}`, index: await trained() })));
  const router = await ClusterRouter.start(ctx.nc, { cluster: 'ann', deadlineMs: 10_000 });
  const single = await trained();
  try {
    const position = await log.upsert(ids, vectors);
    await single.upsert(ids, vectors);
    const k = 10;
    const queries = randomVectors(100, dim, 62);
    const truth = bruteForce('ip', ids, vectors, queries, dim, k);
    const recall = (results: SearchResults) => truth.reduce((sum, t, q) => sum + t.ids.filter((id) => results.row(q).ids.includes(id)).length, 0) / (k * truth.length);
    const until = Date.now() + 5000;
    while ([0, 1, 2, 3].some((s) => router.replicas(s).length === 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const routed = await router.search(queries, k, { readAfter: position });
    assert.is(routed.partial, false);
    const sharded = recall(routed.results);
    const whole = recall(await single.search(queries, k));
    console.log(`  IVF-Flat recall@${k} (nprobe 8 of 64): 4 shards ${sharded.toFixed(3)}, one index ${whole.toFixed(3)}`);
    assert.ok(whole < 0.99, `the single index should be approximate here (recall ${whole})`);
    assert.ok(sharded >= whole - 0.01, `sharded recall ${sharded} vs ${whole}`);
  } finally {
    await router.close();
    await Promise.all(replicas.map((r) => r.close()));
    single.close();
  }
});

formats.run();
cluster.run();
