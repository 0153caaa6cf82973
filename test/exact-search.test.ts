import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, FlatIndex, FaissIndex, InvalidArgumentError, type Metric, type ScanPrecision } from '../lib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusteredVectors } from './helpers/clustered';
import { randomVectors, sequentialIds } from './helpers/random';
import { assertExact, bruteForce, offsetsOf } from './helpers/reference';

const exact = suite('exact search equals float64 brute force');

const cases: { n: number; dim: number; nq: number; k: number }[] = [
  { n: 1, dim: 8, nq: 1, k: 1 },
  { n: 17, dim: 5, nq: 3, k: 40 }, // k > size: padded
  { n: 1000, dim: 37, nq: 7, k: 10 }, // odd dim, partial panels and query tiles
  { n: 5003, dim: 64, nq: 1, k: 100 },
  { n: 5003, dim: 64, nq: 13, k: 1 },
  { n: 20000, dim: 128, nq: 16, k: 4096 }, // large k
  { n: 3000, dim: 96, nq: 64, k: 25 },
];

for (const metric of ['ip', 'l2', 'cosine'] as Metric[]) {
  for (const [c, { n, dim, nq, k }] of cases.entries()) {
    exact(`${metric}: n=${n} dim=${dim} nq=${nq} k=${k}`, async () => {
      const seed = 1000 * c + metric.length;
      const vectors = randomVectors(n, dim, seed);
      const ids = sequentialIds(n, 10_000_000_000);
      const queries = randomVectors(nq, dim, seed + 1);
      const index = new FlatIndex({ dim, metric });
      // Two adds, to cover appends into a partly filled panel.
      const half = Math.floor(n / 2);
      if (half > 0) await index.add(ids.subarray(0, half), vectors.subarray(0, half * dim));
      await index.add(ids.subarray(half), vectors.subarray(half * dim));
      assert.is(index.size, n);
      const results = await index.search(queries, k);
      const reference = bruteForce(metric, ids, vectors, queries, dim, k);
      assertExact(results, reference, metric, offsetsOf(ids, dim), vectors, queries, dim);
      index.close();
    });
  }
}

// bf16 and int8 scans re-rank in fp32 whatever an error bound cannot rule out: the answers are
// the fp32 index's, score for score, and the float64 brute force's.
for (const precision of ['bf16', 'int8'] as ScanPrecision[]) {
  for (const metric of ['ip', 'l2', 'cosine'] as Metric[]) {
    for (const [c, { n, dim, nq, k }] of cases.entries()) {
      if (k > 1000) continue;  // the large-k case adds nothing here but time
      exact(`${precision} ${metric}: n=${n} dim=${dim} nq=${nq} k=${k} equals fp32`, async () => {
        const seed = 7000 * c + metric.length;
        // Clustered data with tight clusters: many ads score within the reduction's error of each other.
        const vectors = c % 2 ? clusteredVectors(n, dim, 20, seed, 0.01) : randomVectors(n, dim, seed);
        const ids = sequentialIds(n, 5_000);
        const queries = randomVectors(nq, dim, seed + 1);
        const reduced = new FlatIndex({ dim, metric, precision });
        const fp32 = new FlatIndex({ dim, metric });
        await reduced.add(ids, vectors);
        await fp32.add(ids, vectors);
        const got = await reduced.search(queries, k);
        const want = await fp32.search(queries, k);
        assert.equal(Array.from(got.scores), Array.from(want.scores));
        assertExact(got, bruteForce(metric, ids, vectors, queries, dim, k), metric, offsetsOf(ids, dim), vectors, queries, dim);
        const stats = await reduced.stats();
        assert.is(stats.options.precision, precision);
        assert.is(stats.reducedQueries, nq);
        assert.ok(stats.reducedReranked >= nq * Math.min(k, n));
        reduced.close();
        fp32.close();
      });
    }
  }
}

exact('reduced precision: filters, save and load, typed errors', async () => {
  const dim = 24;
  const n = 4000;
  const vectors = randomVectors(n, dim, 31);
  const ids = sequentialIds(n, 1);
  const queries = randomVectors(5, dim, 32);
  const index = new AdIndex({ dim, kind: 'flat', precision: 'int8' });
  const fp32 = new AdIndex({ dim, kind: 'flat' });
  const categories = Array.from({ length: n }, (_, i) => ({ category: i % 7 }));
  await index.upsert(ids, vectors, categories);
  await fp32.upsert(ids, vectors, categories);
  const filter = { categories: [3] };
  const got = await index.search(queries, 20, { filter });
  assert.equal(Array.from(got.ids), Array.from((await fp32.search(queries, 20, { filter })).ids));
  for (const id of got.ids) assert.is(Number(id - 1n) % 7, 3);

  const dir = mkdtempSync(join(tmpdir(), 'cangen-precision-'));
  try {
    await index.save(join(dir, 'ads.cgn'));
    const loaded = await AdIndex.load(join(dir, 'ads.cgn'));
    assert.is((await loaded.stats()).options.precision, 'int8');
    assert.equal(Array.from((await loaded.search(queries, 20)).scores), Array.from((await fp32.search(queries, 20)).scores));
    loaded.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => new FlatIndex({ dim, precision: 'fp16' as ScanPrecision }), (e: unknown) => e instanceof InvalidArgumentError && /precision/.test(e.message));
  assert.throws(() => new AdIndex({ dim, kind: 'hnsw', precision: 'bf16' }), (e: unknown) => e instanceof InvalidArgumentError && /kind 'flat'/.test(e.message));
  index.close();
  fp32.close();
});

exact('one thread and many threads agree', async () => {
  const dim = 32;
  const vectors = randomVectors(30000, dim, 7);
  const queries = randomVectors(9, dim, 8);
  const index = new FlatIndex({ dim, metric: 'ip' });
  await index.add(sequentialIds(30000), vectors);
  const one = await index.search(queries, 50, { threads: 1 });
  const four = await index.search(queries, 50, { threads: 4 });
  assert.equal(Array.from(one.scores), Array.from(four.scores));
});

exact('ids given as numbers and bigints round-trip', async () => {
  const index = new FlatIndex({ dim: 2, metric: 'ip' });
  const big = 2n ** 62n + 5n;
  await index.add([7, big, Number.MAX_SAFE_INTEGER], new Float32Array([1, 0, 0, 1, -1, 0]));
  const r = await index.search(new Float32Array([0, 1, 1, 0]), 3);
  assert.equal(Array.from(r.row(0).ids), [big, 7n, BigInt(Number.MAX_SAFE_INTEGER)]);
  assert.equal(Array.from(r.row(1).ids), [7n, big, BigInt(Number.MAX_SAFE_INTEGER)]);
  assert.equal(Array.from(r.row(1).scores), [1, 0, -1]);
});

exact('an empty index pads every row', async () => {
  const index = new FlatIndex({ dim: 4 });
  const r = await index.search(new Float32Array(8), 3);
  assert.equal(Array.from(r.counts), [0, 0]);
  assert.equal(Array.from(r.ids), [-1n, -1n, -1n, -1n, -1n, -1n]);
  assert.equal(r.row(0).ids.length, 0);
});

exact('FAISS flat (a second implementation) agrees with ours', async () => {
  for (const metric of ['ip', 'l2', 'cosine'] as Metric[]) {
    const dim = 48;
    const vectors = randomVectors(4000, dim, 21);
    const queries = randomVectors(5, dim, 22);
    const ids = sequentialIds(4000);
    const ours = new FlatIndex({ dim, metric });
    const theirs = new FaissIndex({ dim, metric, factory: 'Flat' });
    await ours.add(ids, vectors);
    await theirs.add(ids, vectors);
    const a = await ours.search(queries, 20);
    const b = await theirs.search(queries, 20);
    for (let i = 0; i < a.scores.length; i++) {
      assert.ok(Math.abs(a.scores[i]! - b.scores[i]!) <= 1e-3 * Math.max(1, Math.abs(b.scores[i]!)), `${metric} rank ${i}`);
    }
  }
});

exact.run();
