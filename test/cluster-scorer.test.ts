/**
 * A learned scorer per shard: replicas started with a Mixture-of-Logits model attached to their
 * shard's index answer scorer searches, and the router's merged answer equals one scorer attached
 * to one index holding every ad (ids and scores), with scenarios, weights and filters. Replicas
 * without a scorer are never asked for one; bad blends are refused before any fan-out.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, LearnedScorer, MalformedMessageError, ShardReplica, initCluster, type AdAttributes } from '../lib';
import { decodeSearchRequest, encodeSearchRequest } from '../lib/cluster/search-codec';
import { assertIdentical, withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { rejects } from './helpers/rejects';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';
import { until } from './helpers/shard-process';

const test = suite('cluster: a learned scorer per shard');
const skip = natsServerMissing();
const mol: Config = {
  format: 'cangen-scorer', version: 1, kind: 'mol', userDim: 10, itemDim: 12, heads: ['click', 'conversion'],
  mol: { queryComponents: 3, itemComponents: 2, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
  scenarios: { feed: { click: 1, conversion: 0.5 }, shop: { click: 0.2, conversion: 1 } }, defaultScenario: 'feed',
};

test('scorer searches over 2 shards equal one scorer over every ad; replicas without a scorer are not asked', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    const model = writeModel(mol, randomTensors(mol));
    const replicas: ShardReplica[] = [];
    const single = own(new AdIndex({ dim: mol.itemDim }));
    const reference = own(await LearnedScorer.load(model));
    await reference.attach(single);
    await initCluster(nc, { cluster: 'learned', shards: 2, dim: mol.itemDim });
    const log = await CorpusLog.open(nc, 'learned');
    const n = 600;
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(10_000 + i));
    const vectors = randomVectors(n, mol.itemDim, 3);
    const attributes: AdAttributes[] = Array.from({ length: n }, (_, i) => ({ category: i % 3, active: i % 7 !== 0 }));
    const position = await log.upsert(ids, vectors, attributes);
    await single.upsert(ids, vectors, attributes);
    // Shard 1's vector-only replica registers first, so a router ignoring scorers would pick it.
    for (const [shard, id, withScorer] of [[1, 'plain1', false], [0, 'learned0', true], [1, 'learned1', true]] as const) {
      const replica = own(await ShardReplica.start(nc, { cluster: 'learned', shard, replicaId: id, snapshots: false, ...(withScorer ? { scorer: await LearnedScorer.load(model) } : {}) }));
      assert.ok(await replica.waitApplied(position[shard]!, 10_000));
      replicas.push(replica);
    }
    const router = own(await ClusterRouter.start(nc, { cluster: 'learned', deadlineMs: 5000 }));
    await until(() => router.replicas(0).length === 1 && router.replicas(1).length === 2, 5000, 'three replicas registered');

    const users = randomVectors(4, mol.userDim, 8);
    const byScenario = await router.search(users, 25, { scorer: { scenario: 'shop' } });
    assert.is(byScenario.partial, false);
    assert.equal(byScenario.shards.map((s) => s.replicaId), ['learned0', 'learned1']);
    assertIdentical(byScenario.results, await reference.search(users, 25, { scenario: 'shop' }), 'scenario shop');
    assertIdentical((await router.search(users, 25, { scorer: {} })).results, await reference.search(users, 25), 'the default scenario');
    const weights = { click: 0.3, conversion: 2 };
    assertIdentical((await router.search(users, 40, { scorer: { weights } })).results, await reference.search(users, 40, { weights }), 'weights');
    const filter = { categories: [1], active: true };
    const filtered = await router.search(users, 30, { scorer: { scenario: 'feed' }, filter });
    assertIdentical(filtered.results, await reference.search(users, 30, { scenario: 'feed', eligible: await single.filter(filter) }), 'filtered');
    assert.is(replicas[0]!.stats().searches, 0, 'the replica without a scorer was not asked');

    // Vector searches still go to every replica of the map's dim.
    const queries = randomVectors(2, mol.itemDim, 9);
    assertIdentical((await router.search(queries, 10)).results, await single.search(queries, 10), 'vector search');

    await rejects(() => router.search(users, 10, { scorer: { scenario: 'nope' } }), 'ERR_UNKNOWN_SCENARIO', /'feed', 'shop'/);
    await rejects(() => router.search(users, 10, { scorer: { weights: { views: 1 } } }), 'ERR_UNKNOWN_HEAD', /'click', 'conversion'/);
    await rejects(() => router.search(queries, 10, { scorer: {} }), 'ERR_DIMENSION_MISMATCH', /10/);
    await rejects(() => router.search(users, 10, { scorer: { scenario: 'feed', weights } }), 'ERR_INVALID_ARGUMENT', /not both/);

    // A shard whose scorer replica is gone is reported missing, not answered by the plain one.
    const gone = replicas.pop()!;
    await gone.close();
    // Asked before the router saw it leave, the closed replica reads as no responders (also missing, with another reason).
    await until(() => !router.replicas(1).some((r) => r.replicaId === gone.replicaId), 5000, 'the closed replica deregistered');
    const missing = await router.search(users, 10, { scorer: {}, deadlineMs: 300 });
    assert.equal(missing.missingShards, [1]);
    assert.match(missing.shards[1]!.error!, /no serving replica with a learned scorer/, JSON.stringify(missing.shards[1]));
  });
});

test('a shard search request carries the scorer blend only: other scorer options are refused as malformed', () => {
  const users = randomVectors(1, mol.userDim, 1);
  const back = decodeSearchRequest(encodeSearchRequest({ queries: users, dim: mol.userDim, k: 5, minApplied: 0, waitMs: 0, scorer: { weights: { click: 2 } } }));
  assert.equal(back.scorer, { weights: { click: 2 } });
  assert.is(decodeSearchRequest(encodeSearchRequest({ queries: users, dim: mol.userDim, k: 5, minApplied: 0, waitMs: 0 })).scorer, undefined);
  const sneaky = encodeSearchRequest({ queries: users, dim: mol.userDim, k: 5, minApplied: 0, waitMs: 0, scorer: { scenario: 'feed', device: 'gpu' } as never });
  assert.throws(() => decodeSearchRequest(sneaky), (error: Error) => error instanceof MalformedMessageError && /unknown field 'device'/.test(error.message));
});

test.run();
