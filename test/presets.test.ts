// FlatIndex and FaissIndex as presets of AdIndex: the kind each builds, the options each takes,
// add()'s insert-only meaning on every kind (decided natively), and the AdIndex features the
// presets now have (upsert, filters), checked against a float64 brute force.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, DuplicateIdError, FaissIndex, FlatIndex, InvalidArgumentError, type IndexKind } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { assertExact, bruteForce, offsetsOf } from './helpers/reference';

const presets = suite('FlatIndex and FaissIndex are AdIndex presets');

async function rejectsDuplicate(promise: Promise<unknown>, id: number): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, DuplicateIdError);
    assert.match((error as Error).message, new RegExp(`id ${id} is already present; nothing was added`));
    return;
  }
  assert.unreachable('expected DuplicateIdError');
}

function throwsInvalid(fn: () => unknown, text: RegExp): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, InvalidArgumentError);
    assert.match((error as Error).message, text);
    return;
  }
  assert.unreachable('expected InvalidArgumentError');
}

presets('each preset builds its kind, with its own defaults', async () => {
  const flat = new FlatIndex({ dim: 8, metric: 'l2' });
  assert.instance(flat, AdIndex);
  assert.is(flat.kind, 'flat');
  const faiss = new FaissIndex({ dim: 8, factory: 'IVF4,Flat', nprobe: 4 });
  assert.instance(faiss, AdIndex);
  assert.is(faiss.kind, 'faiss');
  assert.is(faiss.factory, 'IVF4,Flat');
  const options = (await faiss.stats()).options;
  assert.is(options.factory, 'IVF4,Flat');
  assert.is(options.storeVectors, false, 'FAISS alone holds the ads, as before');
  assert.is(options.nprobe, 4);
  assert.is((await new FaissIndex({ dim: 8, factory: 'Flat', storeVectors: true }).stats()).options.storeVectors, true);
  flat.close();
  faiss.close();
});

presets('presets take only their own options, and name themselves in messages', () => {
  throwsInvalid(() => new FlatIndex({ dim: 8, kind: 'hnsw' } as never), /Unknown option 'kind' in FlatIndex options/);
  throwsInvalid(() => new FlatIndex({ dim: 8, nlist: 4 } as never), /Unknown option 'nlist' in FlatIndex options/);
  throwsInvalid(() => new FaissIndex({ dim: 8, factory: 'Flat', kind: 'flat' } as never), /Unknown option 'kind' in FaissIndex options/);
  throwsInvalid(() => new FaissIndex({ dim: 8 } as never), /FAISS factory string.*FaissIndex options.factory/);
  throwsInvalid(() => new FaissIndex({ dim: 0, factory: 'Flat' }), /FaissIndex options.dim/);
});

presets('FaissIndex keeps the documented factory strings and refuses the rest', async () => {
  const dim = 16;
  for (const factory of ['Flat', 'IVF8,Flat', 'IVF8,PQ4x4', 'HNSW8', 'OPQ4,IVF8,PQ4x4np', 'IVF8,SQ8']) {
    const index = new FaissIndex({ dim, factory });
    await index.train(randomVectors(8 * 39, dim, 1));
    await index.add(sequentialIds(300), randomVectors(300, dim, 2));
    assert.is(index.size, 300, factory);
    index.close();
  }
  // Outside the grammar a saved file can verify: refused up front (0.1 passed these to FAISS).
  for (const factory of ['IDMap,Flat', 'PCA8,Flat', 'LSH', 'IVF8,PQ4x4fs']) {
    throwsInvalid(() => new FaissIndex({ dim, factory }), /factory string/);
  }
});

presets('add() is insert-only on every kind: a present id rejects the whole batch', async () => {
  const dim = 8;
  const cases: { name: string; make: () => AdIndex }[] = [
    { name: 'FlatIndex', make: () => new FlatIndex({ dim, metric: 'l2' }) },
    { name: "FaissIndex 'Flat'", make: () => new FaissIndex({ dim, metric: 'l2', factory: 'Flat' }) },
    ...(['ivf-flat', 'hnsw'] as IndexKind[]).map((kind) => ({ name: kind, make: () => new AdIndex({ dim, metric: 'l2', kind, nlist: 4 }) })),
  ];
  const vectors = randomVectors(50, dim, 3);
  const rejected = randomVectors(3, dim, 4);
  for (const { name, make } of cases) {
    const index = make();
    await index.train(vectors);
    await index.add(sequentialIds(50), vectors);
    const generation = index.generation;
    await rejectsDuplicate(index.add([60, 7, 61], rejected), 7);
    assert.is(index.size, 50, name);
    assert.is(index.generation, generation, `${name}: nothing was written`);
    // Ad 7 keeps its vector (it is its own nearest neighbour, at distance 0) and 60, 61 are absent.
    const own = await index.search(vectors.subarray(7 * dim, 8 * dim), 1);
    assert.is(own.row(0).ids[0], 7n, name);
    assert.is(own.row(0).scores[0], 0, name);
    const others = await index.search(rejected, 1);
    for (let q = 0; q < 3; q++) assert.ok(others.row(q).ids[0]! < 50n, `${name}: ad ${others.row(q).ids[0]} of the rejected batch`);
    // upsert of the same ids replaces instead.
    await index.upsert([7, 60], rejected.subarray(0, 2 * dim));
    assert.is(index.size, 51, name);
    assert.is((await index.search(rejected.subarray(0, dim), 1)).row(0).ids[0], 7n, name);
    index.close();
  }
});

presets('a FlatIndex filters and upserts like any AdIndex, exactly', async () => {
  const dim = 12;
  const n = 400;
  const ids = sequentialIds(n);
  const vectors = randomVectors(n, dim, 6);
  const index = new FlatIndex({ dim, metric: 'ip' });
  await index.add(ids, vectors, Array.from({ length: n }, (_, i) => ({ category: i % 3 })));
  const queries = randomVectors(5, dim, 7);
  const results = await index.search(queries, 20, { filter: { categories: [1] } });
  const kept = Array.from(ids).filter((_, i) => i % 3 === 1);
  const keptIds = BigInt64Array.from(kept);
  const keptVectors = new Float32Array(kept.length * dim);
  kept.forEach((id, i) => keptVectors.set(vectors.subarray(Number(id) * dim, (Number(id) + 1) * dim), i * dim));
  assertExact(results, bruteForce('ip', keptIds, keptVectors, queries, dim, 20), 'ip', offsetsOf(keptIds, dim), keptVectors, queries, dim);
  index.close();
});

presets.run();
