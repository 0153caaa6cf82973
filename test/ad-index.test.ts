import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, InvalidArgumentError, type AdIndexOptions, type IndexKind } from '../lib';
import { clusteredVectors, recallAt } from './helpers/clustered';
import { randomVectors, sequentialIds } from './helpers/random';
import { assertExact, bruteForce, offsetsOf } from './helpers/reference';

const ann = suite('AdIndex kinds: recall, upserts, removes, compaction');

const dim = 32;
const n = 12000;
const vectors = clusteredVectors(n, dim, 60, 1);
const ids = sequentialIds(n, 1_000);
const queries = clusteredVectors(20, dim, 60, 1).map((v, i) => v + 0.05 * Math.sin(i));
const exact = bruteForce('ip', ids, vectors, queries, dim, 10);

// Stated thresholds per kind on this data (recall@10 against the float64 exact top-10).
const kinds: { kind: IndexKind; options: Partial<AdIndexOptions>; recall: number; label?: string }[] = [
  { kind: 'flat', options: {}, recall: 1 },
  { kind: 'ivf-flat', options: { nlist: 64, nprobe: 8 }, recall: 0.95 },
  { kind: 'ivf-sq8', options: { nlist: 64, nprobe: 8 }, recall: 0.9 },
  { kind: 'ivf-pq', options: { nlist: 64, nprobe: 8, pqBytes: 8, rerank: 10 }, recall: 0.9 },
  // Codes alone (no re-ranking) lose recall to quantisation: 16 bytes for 32 dims gives about 0.75 here.
  { kind: 'ivf-pq', options: { nlist: 64, nprobe: 8, pqBytes: 16, opq: true, storeVectors: false }, recall: 0.65, label: 'ivf-pq + OPQ, codes only' },
  { kind: 'hnsw', options: { hnswM: 16, efConstruction: 64, efSearch: 64 }, recall: 0.95 },
  { kind: 'faiss', options: { factory: 'IVF32,Flat', nprobe: 8 }, recall: 0.9 },
];

async function build(kind: IndexKind, options: Partial<AdIndexOptions>): Promise<AdIndex> {
  const index = new AdIndex({ dim, kind, ...options });
  if (!index.isTrained) await index.train(vectors.subarray(0, 10000 * dim));
  await index.upsert(ids, vectors);
  return index;
}

for (const { kind, options, recall, label = kind } of kinds) {
  ann(`${label}: recall@10 >= ${recall}, upsert replaces, remove is final, compaction keeps answers`, async () => {
    const index = await build(kind, options);
    assert.is(index.size, n);
    const results = await index.search(queries, 10);
    const r = recallAt(results, exact);
    console.log(`  ${label}: recall@10 ${r.toFixed(3)}`);
    assert.ok(r >= recall, `${label} recall ${r} < ${recall}`);
    if (kind === 'flat') assertExact(results, exact, 'ip', offsetsOf(ids, dim), vectors, queries, dim);

    // Remove the best answer of query 0: it must never come back, whatever k.
    const gone = results.row(0).ids[0]!;
    assert.is(await index.remove([gone, 999_999_999n]), 1);
    assert.is(index.size, n - 1);
    let after = await index.search(queries.subarray(0, dim), 200);
    assert.not.ok(Array.from(after.ids).includes(gone), 'a removed ad came back');

    // Upsert an existing id with a far-away embedding: found by the new one only.
    const moved = results.row(1).ids[0]!;
    const far = new Float32Array(dim).fill(25);
    await index.upsert([moved], far);
    assert.is(index.size, n - 1);
    after = await index.search(far, 1);
    assert.is(after.ids[0], moved, 'the upserted ad is found by its new embedding');
    after = await index.search(queries.subarray(dim, 2 * dim), 10);
    const at = Array.from(after.row(0).ids).indexOf(moved);
    if (at >= 0) assert.ok(Math.abs(after.row(0).scores[at]! - 25 * queries.subarray(dim, 2 * dim).reduce((a, b) => a + b, 0)) < 1e-2, 'old embedding still scored');

    const before = await index.stats();
    assert.is(before.deleted, 2);
    assert.is(before.live, n - 1);
    assert.ok(before.bytesPerAd > 0);
    await index.compact();
    const compacted = await index.stats();
    assert.is(compacted.deleted, 0);
    assert.is(compacted.live, n - 1);
    const again = await index.search(queries, 10);
    assert.not.ok(Array.from(again.ids).includes(gone));
    assert.ok(recallAt(again, exact) >= recall - 0.1, 'compaction kept the index usable');
    index.close();
  });
}

ann('HNSW: a wider beam (efSearch, per search) finds more of the true neighbours', async () => {
  const d = 24;
  const data = randomVectors(8000, d, 41); // unclustered: hard enough that the beam matters
  const dataIds = sequentialIds(8000, 1);
  const qs = randomVectors(50, d, 42);
  const truth = bruteForce('l2', dataIds, data, qs, d, 10);
  const index = new AdIndex({ dim: d, kind: 'hnsw', metric: 'l2', hnswM: 8, efConstruction: 40 });
  await index.upsert(dataIds, data);
  const narrow = recallAt(await index.search(qs, 10, { efSearch: 10 }), truth);
  const wide = recallAt(await index.search(qs, 10, { efSearch: 400 }), truth);
  console.log(`  hnsw: recall@10 ${narrow.toFixed(3)} at efSearch 10, ${wide.toFixed(3)} at 400`);
  assert.ok(wide >= 0.98, `recall ${wide} at efSearch 400`);
  assert.ok(wide > narrow + 0.05, 'efSearch had no effect');
  // Concurrent searches at different beams each get their own.
  const [a, b] = await Promise.all([index.search(qs, 10, { efSearch: 10 }), index.search(qs, 10, { efSearch: 400 })]);
  assert.is(recallAt(a, truth), narrow);
  assert.is(recallAt(b, truth), wide);
});

ann('untrained IVF index refuses upserts with a clear message', async () => {
  const index = new AdIndex({ dim, kind: 'ivf-flat', nlist: 16 });
  try {
    await index.upsert([1], new Float32Array(dim));
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /trained index: call train\(\)/);
  }
  try {
    await index.train(new Float32Array(8 * dim));
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /at least nlist = 16/);
  }
});

ann('options are validated', () => {
  assert.throws(() => new AdIndex({ dim: 30, kind: 'ivf-pq', pqBytes: 8 }), /divisor of dim 30/);
  assert.throws(() => new AdIndex({ dim, kind: 'hsnw' as IndexKind }), /one of 'flat'/);
  assert.throws(() => new AdIndex({ dim, nprobes: 3 } as AdIndexOptions), /did you mean 'nprobe'/);
  assert.throws(() => new AdIndex({ dim, kind: 'faiss' }), /FAISS factory string/);
  // Factory strings are held to what a saved file may contain: bounded numbers, verifiable structures.
  for (const factory of ['IVF2147483647,Flat', 'IVF16,PQ8x17', 'HNSW32,PQ8', 'IDMap,Flat']) {
    assert.throws(() => new AdIndex({ dim, kind: 'faiss', factory }), (e: unknown) => e instanceof InvalidArgumentError, factory);
  }
});

ann.run();
