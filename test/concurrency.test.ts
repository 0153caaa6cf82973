import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FlatIndex, type SearchResults } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { bruteForce, type Ranked } from './helpers/reference';

const concurrency = suite('concurrent searches and adds');

concurrency('100 concurrent searches while adds run each see a consistent corpus', async () => {
  const dim = 32;
  const k = 20;
  const base = 5000;
  const batch = 500;
  const batches = 10;
  const total = base + batch * batches;
  const vectors = randomVectors(total, dim, 99);
  const ids = sequentialIds(total, 1);
  const queries = randomVectors(4, dim, 100);

  // The exact answer after each prefix of adds: a search must match one of them exactly.
  const snapshots: Ranked[][] = [];
  for (let b = 0; b <= batches; b++) {
    const n = base + b * batch;
    snapshots.push(bruteForce('ip', ids.subarray(0, n), vectors.subarray(0, n * dim), queries, dim, k));
  }

  const index = new FlatIndex({ dim, metric: 'ip' });
  await index.add(ids.subarray(0, base), vectors.subarray(0, base * dim));
  // Adds run one after another (so every corpus state is a prefix of the batches) while ten
  // searches are in flight around each of them.
  const searches: Promise<SearchResults>[] = [];
  const adds = (async () => {
    for (let b = 0; b < batches; b++) {
      for (let s = 0; s < 10; s++) searches.push(index.search(queries, k));
      const from = base + b * batch;
      await index.add(ids.subarray(from, from + batch), vectors.subarray(from * dim, (from + batch) * dim));
    }
  })();
  await adds;
  const results = await Promise.all(searches);
  assert.is(index.size, total);

  const seen = new Set<number>();
  for (const result of results) {
    const match = snapshots.findIndex((snapshot) =>
      snapshot.every((expected, q) => {
        const row = result.row(q);
        return expected.scores.every((s, i) => Math.abs(s - row.scores[i]!) <= 1e-3 * Math.max(1, Math.abs(s)));
      }),
    );
    assert.ok(match >= 0, 'a search returned results that match no consistent state of the corpus');
    seen.add(match);
  }
  // The final state must be what a search after all adds sees.
  const last = await index.search(queries, k);
  assert.equal(Array.from(last.row(0).ids), snapshots[batches]![0]!.ids);
  assert.ok(seen.size > 1, 'the searches did not overlap the adds');
  console.log(`  (searches observed ${seen.size} distinct corpus states)`);
});

concurrency('parallel searches on one index return identical results', async () => {
  const dim = 16;
  const index = new FlatIndex({ dim });
  await index.add(sequentialIds(20000), randomVectors(20000, dim, 5));
  const queries = randomVectors(8, dim, 6);
  const results = await Promise.all(Array.from({ length: 32 }, () => index.search(queries, 30)));
  for (const r of results) assert.equal(r.ids, results[0]!.ids);
});

concurrency.run();
