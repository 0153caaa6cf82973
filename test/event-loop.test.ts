import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FlatIndex } from '../lib';
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

  let worst = 0;
  let ticks = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
    ticks++;
  }, 5);
  try {
    await index.add(ids, vectors);
    for (const nq of [1, 16, 256, 1, 16]) {
      const r = await index.search(queries.subarray(0, nq * dim), 10);
      assert.is(r.queries, nq);
    }
  } finally {
    clearInterval(timer);
  }
  console.log(`  (${ticks} ticks, worst extra delay ${worst.toFixed(1)} ms)`);
  assert.ok(ticks > 20, `the timer ran only ${ticks} times`);
  assert.ok(worst < 50, `the timer waited ${worst.toFixed(1)} ms more than its interval`);
  index.close();
});

loop.run();
