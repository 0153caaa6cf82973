/**
 * The sizing model's tail formulas (bench/sizing-model.ts) against exact order statistics of
 * distributions whose quantiles are known in closed form, and its Monte-Carlo simulation against
 * both.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ascending, costFactor, empiricalCdf, empiricalQuantile, fanOutQuantile, hedgedFanOutQuantile, largestShardWithin, quantile, scaleSamples, simulateFanOut,
} from '../bench/sizing-model';

/** n samples placed at the exact quantiles (i + 0.5) / n of Exp(1): an empirical CDF within 1/n of the true one. */
const exponential = (n: number) => ascending(Array.from({ length: n }, (_, i) => -Math.log(1 - (i + 0.5) / n)));

const close = (actual: number, expected: number, relative: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= relative * Math.abs(expected), `${what}: ${actual} vs ${expected} (within ${relative * 100}%)`);

test('quantile and CDF of a small sample', () => {
  const s = ascending([4, 1, 3, 2, 5]);
  assert.is(quantile(s, 0), 1);
  assert.is(quantile(s, 0.5), 3);
  assert.is(quantile(s, 0.875), 4.5);
  assert.is(quantile(s, 1), 5);
  assert.is(empiricalCdf(s, 2.5), 0.4);
  assert.is(empiricalCdf(s, 5), 1);
  assert.is(empiricalCdf(s, 0), 0);
  // The inverse of the CDF: the smallest sample whose CDF reaches p.
  assert.equal([0.1, 0.2, 0.21, 0.8, 0.99, 1].map((p) => empiricalQuantile(s, p)), [1, 1, 2, 4, 5, 5]);
  for (const p of [0.05, 0.2, 0.5, 0.93]) assert.ok(empiricalCdf(s, empiricalQuantile(s, p)) >= p);
});

test('fan-out quantile equals the exact max-of-S order statistic (exponential and uniform)', () => {
  const exp = exponential(200_000);
  for (const shards of [1, 4, 16, 64]) {
    // P(max of S Exp(1) <= t) = (1 - e^-t)^S, so its q-quantile is -ln(1 - q^(1/S)).
    const exact = -Math.log(1 - 0.99 ** (1 / shards));
    close(fanOutQuantile(exp, shards, 0.99), exact, 0.005, `exponential, S=${shards}`);
    close(fanOutQuantile(exp, shards, 0.99, 3), exact + 3, 0.005, `exponential + overhead 3, S=${shards}`);
  }
  const uniform = ascending(Array.from({ length: 100_001 }, (_, i) => i / 100_000));
  // Max of S uniforms: CDF t^S, quantile q^(1/S).
  close(fanOutQuantile(uniform, 8, 0.5), 0.5 ** (1 / 8), 1e-4, 'uniform median of the max of 8');
  // Not the per-shard p99: the tail of 64 shards is far beyond it.
  assert.ok(fanOutQuantile(exp, 64, 0.99) > 1.8 * quantile(exp, 0.99));
});

test('hedged fan-out quantile equals the exact order statistic for exponential latencies', () => {
  const exp = exponential(200_000);
  for (const [shards, hedge] of [[1, 1], [8, 2], [32, 1.5]] as const) {
    // min(X1, h + X2) for t >= h: P(> t) = e^-t e^-(t-h), so the shard CDF is 1 - e^-(2t-h) and the
    // q-quantile of the max of S is (h - ln(1 - q^(1/S))) / 2 (valid when it is >= h).
    const exact = (hedge - Math.log(1 - 0.99 ** (1 / shards))) / 2;
    assert.ok(exact >= hedge);
    close(hedgedFanOutQuantile(exp, shards, 0.99, hedge), exact, 0.005, `hedged S=${shards} h=${hedge}`);
    assert.ok(hedgedFanOutQuantile(exp, shards, 0.99, hedge) < fanOutQuantile(exp, shards, 0.99), 'hedging shortens the tail');
  }
});

test('the Monte-Carlo simulation agrees with the formulas, with and without hedging', () => {
  const exp = exponential(50_000);
  for (const shards of [1, 8, 32]) {
    const sim = simulateFanOut(exp, { shards, trials: 100_000, seed: shards });
    close(quantile(sim, 0.99), fanOutQuantile(exp, shards, 0.99), 0.04, `simulated p99, S=${shards}`);
    close(quantile(sim, 0.5), fanOutQuantile(exp, shards, 0.5), 0.02, `simulated p50, S=${shards}`);
    const hedged = simulateFanOut(exp, { shards, trials: 100_000, hedgeMs: 1, seed: 100 + shards });
    close(quantile(hedged, 0.99), hedgedFanOutQuantile(exp, shards, 0.99, 1), 0.04, `simulated hedged p99, S=${shards}`);
  }
  // A small sample with far-apart outliers (a noisy machine): the fan-out reads its extreme tail,
  // and the formula must describe the same draws the simulation makes.
  const noisy = ascending([...Array.from({ length: 1990 }, (_, i) => 1 + i / 1990), 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  for (const shards of [2, 8, 32]) {
    const sim = simulateFanOut(noisy, { shards, trials: 200_000, seed: 40 + shards });
    const model = fanOutQuantile(noisy, shards, 0.99);
    // The simulated p99 lands on the model's sample or, within Monte-Carlo error, its neighbour.
    const rank = noisy.indexOf(model);
    assert.ok(quantile(sim, 0.99) >= noisy[rank - 1]! && quantile(sim, 0.99) <= noisy[Math.min(rank + 1, noisy.length - 1)]!, `S=${shards}: sim ${quantile(sim, 0.99)}, model ${model}`);
  }
  // Overhead samples are drawn per trial: a constant list adds exactly that constant.
  const constant = simulateFanOut(exp, { shards: 4, trials: 20_000, seed: 9, overheadMs: [2, 2, 2] });
  const plain = simulateFanOut(exp, { shards: 4, trials: 20_000, seed: 9, overheadMs: 2 });
  assert.equal([...constant], [...plain]);
});

test('cost models scale the samples, and the largest shard within a budget is found', () => {
  assert.is(costFactor('linear', 1e6, 4e6), 4);
  assert.is(costFactor('sqrt', 1e6, 4e6), 2);
  close(costFactor('log', 1e3, 1e6), 2, 1e-12, 'log');
  assert.equal([...scaleSamples([1, 2], 'linear', 10, 30)], [3, 6]);
  // 2 ms per million ads plus a 1 ms fixed part: within 11 ms at most 5M ads.
  const linear = (n: number) => 1 + (2 * n) / 1e6;
  close(largestShardWithin(11, 1e9, linear), 5e6, 0.011, 'largest shard');
  assert.ok(linear(largestShardWithin(11, 1e9, linear)) <= 11);
  assert.is(largestShardWithin(11, 1e6, linear), 1e6);
  assert.is(largestShardWithin(0.5, 1e6, linear), 0);
  // U-shaped: 1e9 ads in shards of n, 0.1 ms of router work per shard: the best is near 7.07e6 ads
  // (29.3 ms at the bottom), and the largest size within 60 ms is found from above, not the smallest.
  const uShaped = (n: number) => 1 + (2 * n) / 1e6 + 0.1 * Math.ceil(1e9 / n);
  const found = largestShardWithin(60, 1e9, uShaped);
  assert.ok(uShaped(found) <= 60 && uShaped(found / 0.98) > 60, `found ${found}`);
  assert.ok(found > 7.07e6, `found ${found}`);
  assert.is(largestShardWithin(25, 1e9, uShaped), 0);
});

test.run();
