import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, FlatIndex, InvalidArgumentError, LearnedScorer } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, writeModel } from './helpers/scorer-model';

// A caller may transfer (structuredClone / postMessage with transfer) or resize the buffer of a
// typed array it passed to an async call while the promise is pending. The worker must not read
// that memory after the call returns: here the transferred memory is overwritten by its new owner
// (and a resizable buffer shrunk, then grown back zeroed) right after each call, and the results
// must equal those of the same call on untouched inputs.
const detach = suite('inputs transferred or resized while the promise is pending');
const dim = 32;

/** Transfers `a`'s buffer away (a becomes detached) and scribbles over the memory's new owner. */
function transferAway(a: Float32Array | BigInt64Array | Uint8Array): void {
  const moved = structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  new Uint8Array(moved).fill(0xff); // NaN floats, -1 ids, all-ones masks
  assert.is(a.length, 0, 'the caller array is detached');
}

/** A Float32Array over a resizable buffer; shrink() empties it and grows it back zeroed. */
function resizable(values: Float32Array): { array: Float32Array; shrink: () => void } {
  // Resizable buffers (ES2024) are newer than the TypeScript lib this project targets.
  const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
  const buffer = new Resizable(values.byteLength, { maxByteLength: values.byteLength });
  const array = new Float32Array(buffer);
  array.set(values);
  return {
    array,
    shrink: () => {
      buffer.resize(0);
      buffer.resize(values.byteLength);
    },
  };
}

function sameResults(a: { ids: BigInt64Array; scores: Float32Array }, b: { ids: BigInt64Array; scores: Float32Array }, what: string): void {
  assert.equal(Array.from(a.ids), Array.from(b.ids), `${what}: ids`);
  assert.equal(Array.from(a.scores), Array.from(b.scores), `${what}: scores`);
}

// Inputs up to 1 MiB are copied as the call is made; larger ones in slices (last test).
detach('FlatIndex add and search', async () => {
  const n = 8000;
  const ads = randomVectors(n, dim, 1);
  const queries = randomVectors(20, dim, 2);
  const reference = new FlatIndex({ dim });
  await reference.add(sequentialIds(n), ads);
  const expected = await reference.search(queries, 10);

  const index = new FlatIndex({ dim });
  const ids = sequentialIds(n);
  const vectors = ads.slice();
  const adding = index.add(ids, vectors);
  transferAway(vectors);
  transferAway(ids);
  await adding;
  const q = queries.slice();
  const searching = index.search(q, 10);
  transferAway(q);
  sameResults(await searching, expected, 'transferred queries');

  const { array, shrink } = resizable(queries);
  const resized = index.search(array, 10);
  shrink();
  sameResults(await resized, expected, 'resized queries');
});

detach('AdIndex upsert and search (flat and hnsw)', async () => {
  const n = 8000; // above the exact fallback's 4096: HNSW searches its graph
  const ads = randomVectors(n, dim, 3);
  const queries = randomVectors(16, dim, 4);
  for (const kind of ['flat', 'hnsw'] as const) {
    const index = new AdIndex({ dim, kind, hnswM: 8 });
    const ids = sequentialIds(n);
    const vectors = ads.slice();
    const upserting = index.upsert(ids, vectors);
    transferAway(vectors);
    transferAway(ids);
    await upserting;
    const q = queries.slice();
    const searching = index.search(q, 10, { threads: 1 });
    transferAway(q);
    const got = await searching;
    sameResults(got, await index.search(queries, 10, { threads: 1 }), `${kind} transferred queries`);
    // The stored vectors are the ones passed: each result's score is its exact inner product.
    for (let r = 0; r < got.ids.length; r++) {
      const slot = Number(got.ids[r]!), query = Math.floor(r / 10);
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += queries[query * dim + j]! * ads[slot * dim + j]!;
      assert.ok(Math.abs(got.scores[r]! - dot) <= 1e-4 * Math.max(1, Math.abs(dot)), `${kind} result ${r}: ${got.scores[r]} vs ${dot}`);
    }
  }
});

detach('LearnedScorer add, search (mask, candidates) and score', async () => {
  const config = { format: 'cangen-scorer', version: 1, kind: 'mlp', userDim: dim, itemDim: dim, heads: ['click'], mlp: { hidden: [16] } };
  const tensors = randomTensors(config);
  const n = 5000;
  const ads = randomVectors(n, dim, 5);
  const users = randomVectors(4, dim, 6);
  const mask = new Uint8Array(n).map((_, i) => (i % 2 ? 1 : 0));
  const candidates = new BigInt64Array(4 * 100).map((_, i) => BigInt((i * 37) % n));
  const reference = await LearnedScorer.load(writeModel(config, tensors));
  await reference.add(sequentialIds(n), ads);

  const scorer = await LearnedScorer.load(writeModel(config, tensors));
  const ids = sequentialIds(n);
  const embeddings = ads.slice();
  const adding = scorer.add(ids, embeddings);
  transferAway(embeddings);
  transferAway(ids);
  await adding;

  const u1 = users.slice(), m = mask.slice();
  const masked = scorer.search(u1, 10, { eligible: m });
  transferAway(u1);
  transferAway(m);
  sameResults(await masked, await reference.search(users, 10, { eligible: mask }), 'mask');

  const u2 = users.slice(), c = candidates.slice();
  const ranked = scorer.search(u2, 10, { candidates: c });
  transferAway(u2);
  transferAway(c);
  sameResults(await ranked, await reference.search(users, 10, { candidates }), 'candidates');

  const { array, shrink } = resizable(users);
  const scoring = scorer.score(array);
  shrink();
  assert.equal(Array.from(await scoring), Array.from(await reference.score(users)), 'score() on a resized buffer');
});

detach('inputs over 1 MiB: copied in slices; a transfer before the copy is done rejects and adds nothing', async () => {
  const n = 100_000; // 12.8 MB of vectors, 0.8 MB of ids
  const ads = randomVectors(n, dim, 7);
  const index = new FlatIndex({ dim });
  const vectors = ads.slice();
  const adding = index.add(sequentialIds(n), vectors);
  transferAway(vectors);
  try {
    await adding;
    assert.unreachable('expected the add to reject');
  } catch (error) {
    assert.instance(error, InvalidArgumentError, String(error));
    assert.match((error as Error).message, 'transferred or resized');
  }
  assert.is(index.size, 0);
  // Left alone, the same input is added and searched correctly.
  await index.add(sequentialIds(n), ads);
  const reference = new FlatIndex({ dim });
  await reference.add(sequentialIds(n), ads);
  const queries = randomVectors(3, dim, 8);
  sameResults(await index.search(queries, 5), await reference.search(queries, 5), 'large add');
});

detach.run();
