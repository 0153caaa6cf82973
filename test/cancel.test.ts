/**
 * Cancelling searches with an AbortSignal (lib/cancel.ts): one cancel word per signal, shared by
 * every search that carries it. Checked: a signal aborted before the call, an abort while several
 * searches of one signal are running (all of them stop), a signal used by searches that finished
 * and then aborted, and a value that is not a signal.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex } from '../lib/ad-index';
import { randomVectors } from './helpers/random';
import { rejects } from './helpers/rejects';

const cancel = suite('search cancellation by AbortSignal');
const dim = 64;

async function bigIndex(): Promise<AdIndex> {
  // Large enough that a search of 256 queries takes far longer than the abort below, even when a
  // loaded machine delays the abort (and is never run inline, where it could not be stopped).
  const n = 200_000;
  const index = new AdIndex({ kind: 'flat', dim, threads: 1 });
  await index.upsert(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), randomVectors(n, dim, 5));
  return index;
}

cancel('a signal aborted before the call rejects at once; a value that is not a signal is a typed error', async () => {
  const index = new AdIndex({ kind: 'flat', dim: 4 });
  await index.upsert([1n], new Float32Array([1, 0, 0, 0]));
  const controller = new AbortController();
  controller.abort();
  await rejects(index.search(new Float32Array(4), 1, { signal: controller.signal }), 'ERR_ABORTED', /before it started/);
  await rejects(index.search(new Float32Array(4), 1, { signal: {} as AbortSignal }), 'ERR_INVALID_ARGUMENT', /AbortSignal/);
  index.close();
});

cancel('one abort stops every running search of that signal, and only those', async () => {
  const index = await bigIndex();
  const queries = randomVectors(256, dim, 6);
  const controller = new AbortController();
  const shared = [0, 1, 2].map(() => rejects(index.search(queries, 10, { signal: controller.signal }), 'ERR_ABORTED', /./));
  const other = index.search(queries.subarray(0, dim), 10, { signal: new AbortController().signal });
  setImmediate(() => controller.abort());
  await Promise.all(shared);
  const answered = await other;
  assert.is(answered.counts[0], 10, 'a search of another signal is not stopped');
  index.close();
});

cancel('a signal whose earlier searches finished still cancels the next ones', async () => {
  const index = await bigIndex();
  const query = randomVectors(1, dim, 7);
  const controller = new AbortController();
  for (let i = 0; i < 3; i++) {
    const result = await index.search(query, 5, { signal: controller.signal });
    assert.is(result.counts[0], 5, 'searches under a live signal answer');
  }
  const running = rejects(index.search(randomVectors(256, dim, 8), 10, { signal: controller.signal }), 'ERR_ABORTED', /./);
  setImmediate(() => controller.abort());
  await running;
  await rejects(index.search(query, 5, { signal: controller.signal }), 'ERR_ABORTED', /before it started/);
  index.close();
});

cancel.run();
