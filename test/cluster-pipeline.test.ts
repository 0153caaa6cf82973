/**
 * The candidate pipeline in the router (ClusterEngine) on a real nats-server: two routers take
 * writes with names (advertisers, campaigns, categories, geos), spends, campaign budgets and
 * removes through the catalog stream; both intern the same names to the same codes; the catalog
 * applier turns the writes into shard-log updates; and /retrieve over 2 shards answers exactly as
 * one in-process engine given the same writes. Then: a shard down (partial, reported per
 * generator), the applier's router closed (the other takes the lease), a malformed catalog
 * message (skipped by every router, dead-lettered once), readAfter past what was written, and a
 * router with a dataDir restarting from its corpus on disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, ClusterEngine, LearnedScorer, LearnedScorerAdapter, ShardReplica, initCluster, shardOf, type AdUpsert, type RetrieveRequest, type ScenarioConfig } from '../lib';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';
import { clusterNames } from '../lib/cluster/names';
import { withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors, rng } from './helpers/random';
import { rejects } from './helpers/rejects';
import { until } from './helpers/shard-process';

const test = suite('cluster: the candidate pipeline in the router');
const skip = natsServerMissing();
const dim = 8;
const shards = 2;
const scenarios: ScenarioConfig[] = [{ name: 'feed', generators: ['two-tower', 'scorer'], k: 30, deadlineMs: 5000 }];

/** Ads with names of every kind; some without an embedding (cold start). */
function makeAds(n: number, start: number, seed: number): AdUpsert[] {
  const vectors = randomVectors(n, dim, seed);
  return Array.from({ length: n }, (_, i) => ({
    id: BigInt(start + i),
    advertiserId: `advertiser-${(start + i) % 7}`,
    campaignId: `campaign-${(start + i) % 11}`,
    category: `category-${(start + i) % 5}`,
    geos: (start + i) % 4 === 0 ? [] : [`geo-${(start + i) % 3}`],
    budgetLeft: 100,
    title: `ad ${start + i}`,
    ...((start + i) % 10 === 9 ? {} : { embedding: vectors.slice(i * dim, (i + 1) * dim) }),
  }));
}

function requests(n: number, seed: number): RetrieveRequest[] {
  const users = randomVectors(n, dim, seed);
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    userId: `user-${i}`,
    scenario: 'feed',
    features: { embedding: users.slice(i * dim, (i + 1) * dim), geo: `geo-${i % 3}` },
    ...(random() < 0.5 ? { eligibility: { categories: ['category-1', 'category-3', 'category-4'], excludeAdvertisers: ['advertiser-2'] } } : {}),
  }));
}

/** The answer's candidates (id, score, generator) and each generator's shards missing. */
function summary(result: Awaited<ReturnType<CandidateEngine['retrieve']>>) {
  return result.candidates.map((c) => `${c.adId}:${c.score.toFixed(5)}:${c.source}`);
}

async function openRouter(nc: Parameters<typeof ClusterEngine.open>[0], routerId: string, extra: Partial<Parameters<typeof ClusterEngine.open>[1]> = {}): Promise<ClusterEngine> {
  return ClusterEngine.open(nc, { cluster: 'pipe', routerId, scenarios, allocator: 'static', shardDeadlineMs: 2000, applierLeaseMs: 600, batching: { enabled: false }, ...extra });
}

test('two routers: same codes, writes reach the shards, answers equal one engine; a shard down is reported; the applier fails over', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    await initCluster(nc, { cluster: 'pipe', shards, dim });
    const replicas = [0, 1].map(() => undefined as ShardReplica | undefined);
    for (let s = 0; s < shards; s++) replicas[s] = own(await ShardReplica.start(nc, { cluster: 'pipe', shard: s, replicaId: `p${s}`, snapshots: false }));
    const a = own(await openRouter(nc, 'router-a'));
    const b = own(await openRouter(nc, 'router-b'));
    const local = own(new CandidateEngine({ dim, scenarios, allocator: 'static', batching: { enabled: false } }));

    // Writes through both routers at once: the catalog orders them; disjoint ads commute, so one engine given them in any order agrees.
    const first = makeAds(300, 1000, 1);
    const second = makeAds(300, 5000, 2);
    const [wa, wb] = await Promise.all([a.engine.upsertAds(first), b.engine.upsertAds(second)]);
    await local.upsertAds(first);
    await local.upsertAds(second);
    assert.ok(wa.seq > 0 && wb.seq > 0 && wa.seq !== wb.seq, `catalog sequences ${wa.seq}, ${wb.seq}`);
    assert.is(wa.embedded + wb.embedded, 540);

    // Spends, a campaign out of budget, removes, an update of names and a new embedding.
    const spends = [{ id: 1003n, amount: 150 }, { id: 5007n, amount: 40 }, { id: 5008n, amount: 100 }];
    await b.engine.spend(spends);
    await local.spend(spends);
    await a.engine.setCampaignBudgets([{ campaignId: 'campaign-3', budget: 0 }]);
    await local.setCampaignBudgets([{ campaignId: 'campaign-3', budget: 0 }]);
    const removed = [1010n, 1011n, 5020n, 5021n, 5022n];
    await b.engine.removeAds(removed);
    await local.removeAds(removed);
    const changed: AdUpsert[] = [{ id: 1040n, category: 'category-new', advertiserId: 'advertiser-new' }, { id: 1009n, embedding: randomVectors(1, dim, 9) }];
    const last = await a.engine.upsertAds(changed);
    await local.upsertAds(changed);

    // Both routers applied the catalog in one order: the same names have the same codes.
    await b.catalog.appliedThrough(last.seq);
    const ids = [...first, ...second].map((ad) => ad.id).filter((id) => !removed.includes(id));
    assert.equal([...a.engine.store.nativeAttributes(ids)], [...b.engine.store.nativeAttributes(ids)], 'native attributes (codes) on both routers');

    // The shards hold exactly the ads with an embedding that were not removed.
    await a.readAfter(last.seq, 10_000);
    await b.readAfter(last.seq, 10_000);
    const held = new Set<bigint>();
    for (const r of replicas) for (const id of await r!.index.eligibleIds({})) held.add(id);
    const embedded = ids.filter((id) => local.store.hasEmbedding(id));
    assert.equal([...held].sort(), embedded.sort(), 'ads in the shards');
    // And their eligibility: what the shards filter on agrees with the router's store.
    const eligibleInShards = new Set<bigint>();
    for (const r of replicas) for (const id of await r!.index.eligibleIds({ active: true, budget: ['available', 'limited'] })) eligibleInShards.add(id);
    // By hand: 1003 spent 150 of 100 and 5008 all of its 100; campaign-3 (ids = 3 mod 11) has budget 0.
    const outOfBudget = (id: bigint) => id === 1003n || id === 5008n || Number(id) % 11 === 3;
    assert.equal([...eligibleInShards].sort(), embedded.filter((id) => !outOfBudget(id)).sort(), 'budgets in the shards');

    for (const [i, request] of requests(24, 5).entries()) {
      const expected = await local.retrieve(request);
      assert.ok(expected.candidates.length >= 20, `request ${i}: ${expected.candidates.length} candidates`);
      for (const [name, router] of [['a', a], ['b', b]] as const) {
        const got = await router.engine.retrieve({ ...request, readAfter: last.seq });
        assert.equal(summary(got), summary(expected), `request ${i} on router ${name}`);
        assert.ok(got.generators.every((g) => g.status === 'ok' && g.missingShards === undefined), `request ${i}: every shard answered`);
      }
    }

    // A shard without replicas: answers come within the deadline from the other shard, reported per generator.
    await replicas[1]!.close();
    await until(() => a.router.replicas(1).length === 0, 10_000, 'shard 1 deregistered');
    const partial = await a.engine.retrieve(requests(1, 7)[0]!);
    for (const g of partial.generators) assert.equal(g.missingShards, [1], `${g.name} reports shard 1 missing`);
    assert.ok(partial.candidates.length > 0 && partial.candidates.every((c) => shardOf(c.adId, shards) === 0), 'candidates from shard 0 only');
    replicas[1] = own(await ShardReplica.start(nc, { cluster: 'pipe', shard: 1, replicaId: 'p1-again', snapshots: false }));

    // The applier's router goes away: the other takes the lease, and its writes reach the shards.
    const holder = a.applier.stats().holding ? a : b;
    const other = holder === a ? b : a;
    await holder.close();
    const fresh = makeAds(3, 9000, 3).map((ad) => ({ ...ad, embedding: ad.embedding ?? new Float32Array(dim).fill(0.5) }));
    const written = await other.engine.upsertAds(fresh);
    await other.readAfter(written.seq, 10_000);
    assert.ok(other.applier.stats().holding, 'the remaining router holds the lease');
    const found = await other.engine.retrieve({ userId: 'u', scenario: 'feed', features: { embedding: fresh[0]!.embedding! }, readAfter: written.seq });
    assert.ok(found.candidates.some((c) => c.adId === 9000n), 'the new ad is served');
  });
});

test('a router with a dataDir restarts from its corpus on disk and replays only the catalog after it', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'cangen-router-corpus-'));
  try {
    await withNats(async ({ nc, own }) => {
      await initCluster(nc, { cluster: 'pipe', shards, dim });
      for (let s = 0; s < shards; s++) own(await ShardReplica.start(nc, { cluster: 'pipe', shard: s, replicaId: `d${s}`, snapshots: false }));
      const lines: string[] = [];
      let a = await openRouter(nc, 'router-a', { dataDir, log: (line) => lines.push(line) });
      const b = own(await openRouter(nc, 'router-b'));
      await a.engine.upsertAds(makeAds(200, 1000, 6));
      await a.engine.spend([{ id: 1001n, amount: 500 }]);
      const before = a.catalog.applied;
      await a.close();
      // While router a is down: more writes (through b) and a message no router can read.
      await b.engine.upsertAds(makeAds(100, 3000, 7));
      await b.engine.setCampaignBudgets([{ campaignId: 'campaign-4', budget: 0 }]);
      const junk = (await nc.jetstream().publish(clusterNames('pipe').catalogSubject, new TextEncoder().encode('{"v":1,"removes":[7]}'))).seq;
      const last = await b.engine.upsertAds([{ id: 1002n, category: 'category-moved' }]);
      await b.catalog.appliedThrough(last.seq);

      lines.length = 0;
      a = own(await openRouter(nc, 'router-a', { dataDir, log: (line) => lines.push(line) }));
      assert.ok(lines.some((line) => line.includes(`catalog: writes ${before + 1} to ${last.seq} replayed`)), lines.join('\n'));
      assert.is(a.catalog.applied, last.seq);
      assert.ok(a.engine.corpus.wasRefused(junk), 'the unreadable message is remembered as refused');
      const ids = [...makeAds(200, 1000, 6), ...makeAds(100, 3000, 7)].map((ad) => ad.id);
      assert.is(a.engine.store.size, b.engine.store.size);
      assert.equal([...a.engine.store.nativeAttributes(ids)], [...b.engine.store.nativeAttributes(ids)], 'the same codes and budgets as a router that never stopped');
      assert.equal(ids.map((id) => a.engine.store.hasEmbedding(id)), ids.map((id) => b.engine.store.hasEmbedding(id)), 'which ads have an embedding (the vectors are in the shards only)');
      await a.readAfter(last.seq, 10_000);
      for (const [i, request] of requests(8, 9).entries()) {
        assert.equal(summary(await a.engine.retrieve(request)), summary(await b.engine.retrieve(request)), `request ${i}`);
      }
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a new router starts from the newest catalog snapshot and replays only the catalog after it', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'cangen-router-corpus-')));
  try {
    await withNats(async ({ nc, own }) => {
      await initCluster(nc, { cluster: 'pipe', shards, dim });
      for (let s = 0; s < shards; s++) own(await ShardReplica.start(nc, { cluster: 'pipe', shard: s, replicaId: `c${s}`, snapshots: false }));
      const a = own(await openRouter(nc, 'router-a', { dataDir: dirs[0] }));
      await a.engine.upsertAds(makeAds(250, 1000, 10));
      await a.engine.spend([{ id: 1002n, amount: 1000 }]);
      const snapshot = await a.snapshotCatalog();
      assert.is(snapshot.sequence, a.catalog.applied, 'the snapshot includes every write applied');
      // A damaged newer snapshot is passed over for it.
      await a.engine.upsertAds(makeAds(50, 2000, 11));
      const newer = await a.snapshotCatalog();
      const names = clusterNames('pipe');
      const objects = await nc.jetstream().views.os(names.snapshotBucket);
      const info = await objects.info(`catalog.seq.${String(newer.sequence).padStart(16, '0')}`);
      await objects.put({ name: info!.name, metadata: { manifest: JSON.stringify({ ...newer, sha256: '0'.repeat(64) }) } }, readableOf(new Uint8Array(newer.bytes)));
      const last = await a.engine.upsertAds(makeAds(30, 3000, 12));

      const lines: string[] = [];
      const c = own(await openRouter(nc, 'router-c', { dataDir: dirs[1], log: (line) => lines.push(line) }));
      assert.ok(lines.some((line) => line.includes(`catalog snapshot ${snapshot.sequence} of router router-a loaded`)), lines.join('\n'));
      assert.ok(lines.some((line) => /passed over: .*checksum/.test(line)), `the damaged snapshot: ${lines.join('\n')}`);
      assert.ok(lines.some((line) => line.includes(`catalog: writes ${snapshot.sequence + 1} to ${last.seq} replayed`)), lines.join('\n'));
      const ids = [...makeAds(250, 1000, 10), ...makeAds(50, 2000, 11), ...makeAds(30, 3000, 12)].map((ad) => ad.id);
      assert.is(c.engine.store.size, a.engine.store.size);
      assert.equal([...c.engine.store.nativeAttributes(ids)], [...a.engine.store.nativeAttributes(ids)], 'codes and budgets as the router it started from');
      await c.readAfter(last.seq, 10_000);
      for (const [i, request] of requests(6, 13).entries()) {
        assert.equal(summary(await c.engine.retrieve(request)), summary(await a.engine.retrieve(request)), `request ${i}`);
      }
    });
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});

test('shardScorer: the scorer generator ranks with the shards\' learned scorer, as one engine with the same model does', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const mol: Config = {
    format: 'cangen-scorer', version: 1, kind: 'mol', userDim: 6, itemDim: dim, heads: ['click', 'conversion'],
    mol: { queryComponents: 2, itemComponents: 2, componentDim: 4, gatingWidth: 8, temperature: 0.2 },
    scenarios: { feed: { click: 0.2, conversion: 1 } }, defaultScenario: 'feed',
  };
  const model = writeModel(mol, randomTensors(mol));
  await withNats(async ({ nc, own }) => {
    await initCluster(nc, { cluster: 'pipe', shards, dim });
    for (let s = 0; s < shards; s++) own(await ShardReplica.start(nc, { cluster: 'pipe', shard: s, replicaId: `l${s}`, snapshots: false, scorer: await LearnedScorer.load(model) }));
    const learned: ScenarioConfig[] = [{ name: 'feed', generators: ['scorer'], k: 25, deadlineMs: 5000 }];
    const router = own(await ClusterEngine.open(nc, { cluster: 'pipe', routerId: 'r', scenarios: learned, allocator: 'static', shardDeadlineMs: 2000, shardScorer: true }));
    const local = own(await CandidateEngine.open({ dim, scenarios: learned, allocator: 'static', scorer: new LearnedScorerAdapter(await LearnedScorer.load(model)) }));
    const ads = makeAds(300, 100, 8);
    const { seq } = await router.engine.upsertAds(ads);
    await local.upsertAds(ads);
    const users = randomVectors(6, mol.userDim, 9);
    for (let u = 0; u < 6; u++) {
      const request: RetrieveRequest = {
        userId: `u${u}`, scenario: 'feed', features: { shortTerm: users.slice(u * mol.userDim, (u + 1) * mol.userDim), geo: `geo-${u % 3}` },
        ...(u % 2 ? { eligibility: { categories: ['category-0', 'category-2'], excludeAds: ['105', '140'].map(BigInt) } } : {}),
      };
      const expected = await local.retrieve(request);
      assert.ok(expected.candidates.length >= 20, `user ${u}: ${expected.candidates.length} candidates`);
      const got = await router.engine.retrieve({ ...request, readAfter: seq });
      assert.equal(got.candidates.map((c) => String(c.adId)), expected.candidates.map((c) => String(c.adId)), `user ${u}: ids`);
      got.candidates.forEach((c, i) => assert.ok(Math.abs(c.score - expected.candidates[i]!.score) < 1e-5, `user ${u}: score ${i}`));
    }
  });
});

test('malformed catalog messages are skipped by every router and dead-lettered once; readAfter past the catalog fails clearly; no shard map is refused', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    await rejects(() => openRouter(nc, 'nobody'), 'ERR_NO_SHARD_MAP', /pipe/);
    await initCluster(nc, { cluster: 'pipe', shards, dim });
    for (let s = 0; s < shards; s++) own(await ShardReplica.start(nc, { cluster: 'pipe', shard: s, replicaId: `m${s}`, snapshots: false }));
    const a = own(await openRouter(nc, 'router-a'));
    const names = clusterNames('pipe');
    const js = nc.jetstream();
    await js.publish(names.catalogSubject, new TextEncoder().encode('{"v":1,"upserts":[{"ad":{"id":"-4"}}]}'));
    await js.publish(names.catalogSubject, new TextEncoder().encode('not json'));
    const ok = await a.engine.upsertAds(makeAds(20, 100, 4));
    // A router that starts now replays the same messages and skips the same two.
    const b = own(await openRouter(nc, 'router-b'));
    assert.is(a.catalog.stats().malformed, 2);
    assert.is(b.catalog.stats().malformed, 2);
    assert.is(b.engine.store.size, 20);
    await a.readAfter(ok.seq, 10_000);
    const jsm = await nc.jetstreamManager();
    await until(() => a.applier.stats().deadLettered + b.applier.stats().deadLettered === 2, 10_000, 'two dead letters');
    const dead = await jsm.streams.info(names.deadLetterStream, { subjects_filter: names.catalogDeadLetterSubject });
    assert.is(dead.state.messages, 2, 'dead-lettered once each');
    await rejects(() => a.engine.retrieve({ userId: 'u', scenario: 'feed', readAfter: ok.seq + 100, deadlineMs: 200 }), 'ERR_CLUSTER', /did not reach the shard logs within 200 ms/);
    // A write larger than one NATS message is refused before anything is published.
    const huge = makeAds(8000, 20_000, 5).map((ad) => ({ ...ad, title: 'x'.repeat(200) }));
    await rejects(() => a.engine.upsertAds(huge), 'ERR_INVALID_ARGUMENT', /split it into smaller writes/);
    assert.is(a.engine.store.size, 20, 'nothing of it applied');
  });
});

/** Bytes as the web stream the object store's put takes. */
function readableOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(controller) { controller.enqueue(bytes); controller.close(); } });
}

test.run();
