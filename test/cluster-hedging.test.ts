/**
 * Hedging against a slow replica: a replica of shard 0 stalls half of its answers for 150 ms (an
 * artificial delay standing in for pauses, a noisy neighbour or a slow disk). Without hedging the
 * searches it stalls wait for the 100 ms deadline and come partial (few: after a miss the router
 * sends that replica nothing for a second); with a hedged request after 20 ms, p99 stays well
 * within the deadline and every answer is complete and equal to one index holding every ad.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, ClusterRouter, CorpusLog, ShardReplica, initCluster, laterPosition, type LogPosition } from '../lib';
import { withNats } from './helpers/cluster';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors, rng } from './helpers/random';
import { until } from './helpers/shard-process';

const test = suite('cluster: hedging against a slow replica');
const skip = natsServerMissing();
const dim = 16;

interface Run {
  p50: number;
  p99: number;
  max: number;
  partial: number;
  wrong: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

test('hedging keeps p99 within the deadline when a replica stalls', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nc, own }) => {
    const replicas: ShardReplica[] = [];
    const single = own(new AdIndex({ dim }));
    await initCluster(nc, { cluster: 'hedge', shards: 2, dim });
    const log = await CorpusLog.open(nc, 'hedge');
    let position: LogPosition = {};
    for (let b = 0; b < 4; b++) {
      const ids = BigInt64Array.from({ length: 500 }, (_, i) => BigInt(b * 500 + i));
      const vectors = randomVectors(500, dim, b);
      await single.upsert(ids, vectors);
      position = laterPosition(position, await log.upsert(ids, vectors));
    }
    // The slow replica registers first, so that ties in the router's choice go to it.
    for (const [shard, id] of [[0, 'slow0'], [0, 'fast0'], [1, 'r1a'], [1, 'r1b']] as const) {
      const replica = own(await ShardReplica.start(nc, { cluster: 'hedge', shard, replicaId: id, snapshots: false }));
      assert.ok(await replica.waitApplied(position[shard]!, 10_000));
      replicas.push(replica);
    }
    const slow = replicas[0]!;
    const stall = rng(11);
    const search = slow.index.search.bind(slow.index);
    slow.index.search = (async (...args: Parameters<AdIndex['search']>) => {
      if (stall() < 0.5) await new Promise((r) => setTimeout(r, 150));
      return search(...args);
    }) as AdIndex['search'];
    const router = own(await ClusterRouter.start(nc, { cluster: 'hedge', deadlineMs: 100 }));
    await until(() => [0, 1].every((s) => router.replicas(s).filter((m) => m.health === 'serving').length === 2), 5000, 'four replicas serving');

    const queries = randomVectors(240, dim, 5);
    const expected = await single.search(queries, 10);
    const run = async (hedgeAfterMs: number): Promise<Run> => {
      const ms: number[] = [];
      let partial = 0;
      let wrong = 0;
      let nextQuery = 0;
      // Four callers at once, each sending its next search when the last one answered.
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let q = nextQuery++; q < 240; q = nextQuery++) {
          const started = performance.now();
          const answer = await router.search(queries.subarray(q * dim, (q + 1) * dim), 10, { hedgeAfterMs });
          ms.push(performance.now() - started);
          if (answer.partial) partial++;
          else if (String(answer.results.row(0).ids) !== String(expected.row(q).ids)) wrong++;
        }
      }));
      ms.sort((a, b) => a - b);
      return { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), max: ms[ms.length - 1]!, partial, wrong };
    };
    const plain = await run(0);
    // A replica whose request failed goes last for a second: wait it out so the stalling replica is back in rotation.
    await new Promise((r) => setTimeout(r, 1100));
    const hedgesBefore = router.stats().hedgesWon;
    const hedged = await run(20);
    const won = router.stats().hedgesWon - hedgesBefore;
    const show = (r: Run) => `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.partial} partial of 240`;
    console.log(`  a replica stalling half of its answers by 150 ms, deadline 100 ms: without hedging ${show(plain)}; hedged after 20 ms ${show(hedged)} (${won} answers from the hedge)`);
    // The router sends the stalling replica little after its first miss (a replica that failed goes
    // last for a second), so without hedging only a few answers miss; each one misses the deadline.
    assert.ok(plain.max >= 99, `without hedging a search waits for the deadline: ${plain.max}`);
    assert.ok(plain.partial >= 1, `without hedging answers come partial: ${plain.partial}`);
    assert.ok(hedged.p99 < 90, `hedged p99 within the deadline: ${hedged.p99}`);
    assert.is(hedged.partial, 0);
    assert.ok(won >= 1, `answers from hedged requests: ${won}`);
    assert.is(plain.wrong + hedged.wrong, 0, 'complete answers equal the single index');
  });
});

test.run();
