import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, FlatIndex, limits } from '../lib';
import { withPrivateInputs } from '../lib/private-input';
import { watchTimer } from './helpers/event-loop';
import { sequentialIds } from './helpers/random';

const loop = suite('the event loop stays responsive');

function uniformVectors(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 4294967296 - 0.5;
  }
  return out;
}

loop('a 5 ms timer never waits more than 50 ms while 1M x 64 is added and searched', async () => {
  const dim = 64;
  const n = 1_000_000;
  const vectors = uniformVectors(n * dim, 1);
  const ids = sequentialIds(n);
  const queries = uniformVectors(256 * dim, 2);
  const index = new FlatIndex({ dim });

  const timer = watchTimer(5);
  let watched = { ticks: 0, worst: 0 };
  try {
    await index.add(ids, vectors);
    for (const nq of [1, 16, 256, 1, 16]) {
      const r = await index.search(queries.subarray(0, nq * dim), 10);
      assert.is(r.queries, nq);
    }
  } finally {
    watched = timer.stop();
  }
  const { ticks, worst } = watched;
  console.log(`  (${ticks} ticks, worst extra delay ${worst.toFixed(1)} ms)`);
  assert.ok(ticks > 20, `the timer ran only ${ticks} times`);
  assert.ok(worst < 50, `the timer waited ${worst.toFixed(1)} ms more than its interval`);
  index.close();
});

loop('tiny searches run inline, yet a 5 ms timer never waits more than 100 ms while a large upsert runs', async () => {
  // One-query IVF searches are under the fast path's budget (bindings/inline_work.h). While the
  // upsert is in flight they must go to a worker: inline, they would block the main thread on the
  // index's lock for the whole write.
  const dim = 64;
  const index = new AdIndex({ dim, kind: 'ivf-flat', nlist: 64, nprobe: 1 });
  await index.train(uniformVectors(10_000 * dim, 3));
  await index.upsert(sequentialIds(10_000), uniformVectors(10_000 * dim, 4));
  const query = uniformVectors(dim, 5);
  const big = 400_000;
  const bigVectors = uniformVectors(big * dim, 6);
  const bigIds = sequentialIds(big, 10_000);
  const timer = watchTimer(5);
  let worst = 0;
  let inlineBefore = 0;
  let inlineDuring = 0;
  let searchesDuring = 0;
  try {
    const inlineCalls = () => limits().inlineCalls;
    const start = inlineCalls();
    for (let i = 0; i < 20; i++) await index.search(query, 10);
    inlineBefore = inlineCalls() - start;
    // The native upsert is called once lib/ has made its private copies of the inputs (in slices,
    // between turns of the loop): from that call until it settles, the index has a write in flight.
    const handle = (index as unknown as { handle: { upsert: (...args: unknown[]) => Promise<void> } }).handle;
    let inFlight = false;
    let written = false;
    const write = withPrivateInputs([bigIds, bigVectors], ['ids', 'vectors'], (i, v) => {
      inFlight = true;
      return handle.upsert(i, v, null, false);
    }).then(() => (written = true));
    const started = performance.now();
    while (!written) {
      const wasInFlight = inFlight;
      const calls = inlineCalls();
      const search = index.search(query, 10);
      if (inlineCalls() > calls && wasInFlight) inlineDuring++;
      await search;
      if (wasInFlight) searchesDuring++;
      await new Promise((r) => setImmediate(r));
    }
    await write;
    worst = timer.stop().worst;
    console.log(`  (upsert of ${big.toLocaleString('en-US')} took ${(performance.now() - started).toFixed(0)} ms; ${searchesDuring} searches meanwhile; worst extra delay ${worst.toFixed(1)} ms)`);
  } finally {
    timer.stop();
  }
  assert.is(inlineBefore, 20, 'one-query searches on a quiet index run inline');
  assert.is(inlineDuring, 0, 'no search ran inline while the upsert was in flight');
  assert.ok(searchesDuring > 0);
  // The upsert takes 600-1,700 ms; the loop's worst stall during it was 42, 51 and 61 ms in three
  // runs on the 2-core CI VM (2026-12-03), whose source is not found yet. 100 ms still fails an
  // upsert that holds the loop for its duration.
  assert.ok(worst < 100, `the timer waited ${worst.toFixed(1)} ms more than its interval`);
  index.close();
});

loop.run();
