import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { apportion, CandidateEngine, StateFileError, StaticAllocator, ThompsonAllocator } from '../lib/orchestration';
import { rng } from './helpers/random';

const allocator = suite('quota allocation');

// A synthetic problem with a known optimum: three generators, k = 40 slots in 20 blocks of 2.
// Reward per slot in block b (a Bernoulli click): generator 'a' is great at the top and decays,
// 'b' is steady for 10 blocks then useless, 'c' is weak everywhere.
const k = 40;
const units = 20;
const names = ['a', 'b', 'c'];
const value = (g: number, block: number) => (g === 0 ? 0.3 * 0.85 ** block : g === 1 ? (block < 10 ? 0.12 : 0.01) : 0.04);
const expectedReward = (quotas: Record<string, number>) =>
  names.reduce((sum, name, g) => {
    let s = 0;
    for (let r = 0; r < quotas[name]!; r++) s += value(g, Math.floor((r * units) / k));
    return sum + s;
  }, 0);

/** The optimum by enumerating every allocation that gives each generator at least one block. */
function optimum(): { reward: number; units: number[] } {
  let best = { reward: -1, units: [0, 0, 0] };
  for (let a = 1; a <= units - 2; a++) {
    for (let b = 1; a + b <= units - 1; b++) {
      const u = [a, b, units - a - b];
      const reward = expectedReward({ a: u[0]! * 2, b: u[1]! * 2, c: u[2]! * 2 });
      if (reward > best.reward) best = { reward, units: u };
    }
  }
  return best;
}

/** Plays `rounds` requests; returns the expected reward of each round's allocation. */
function play(alloc: ThompsonAllocator | StaticAllocator, rounds: number, seed: number, timeoutGenerator?: string): number[] {
  const random = rng(seed);
  const rewards: number[] = [];
  for (let t = 0; t < rounds; t++) {
    const quotas = alloc.allocate('home', k, names);
    rewards.push(expectedReward(quotas));
    const reports = names.map((name) => ({
      generator: name,
      status: name === timeoutGenerator ? ('timeout' as const) : ('ok' as const),
      kept: name === timeoutGenerator ? 0 : quotas[name]!,
      ms: name === timeoutGenerator ? 60 : 3,
    }));
    alloc.recordServed('home', k, reports, 50);
    names.forEach((name, g) => {
      if (name === timeoutGenerator) return;
      for (let rank = 0; rank < quotas[name]!; rank++) {
        if (random() < value(g, Math.floor((rank * units) / k))) {
          alloc.recordFeedback({ type: 'click', adId: 1n, scenario: 'home', source: name, rank, k }, 1);
        }
      }
    });
  }
  return rewards;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

allocator('apportion: integer quotas, proportional, summing to k', () => {
  assert.equal(apportion([1, 1, 1], 10), [4, 3, 3]);
  assert.equal(apportion([0.5, 0.25, 0.25], 7), [3, 2, 2]);
  assert.equal(apportion([0, 0], 5), [3, 2]);
  assert.equal(apportion([3, 0, 1], 0), [0, 0, 0]);
});

allocator('Thompson sampling converges to the known optimum within 3% regret', () => {
  const best = optimum();
  const learned = new ThompsonAllocator({ units, minShare: 0.05, halfLifeRequests: Infinity, seed: 42 });
  const rewards = play(learned, 3000, 7);
  const late = mean(rewards.slice(-1000));
  const regret = (best.reward - late) / best.reward;
  assert.ok(regret < 0.03, `late regret ${(regret * 100).toFixed(2)}% (optimum ${best.reward.toFixed(3)}, got ${late.toFixed(3)})`);
  // The belief (posterior means) is the optimal allocation, within one block per generator.
  const shares = learned.expectedShares('home', names);
  names.forEach((name, g) => assert.ok(Math.abs(shares[name]! * units - best.units[g]!) <= 1, `${name}: ${shares[name]! * units} blocks vs optimum ${best.units[g]}`));
  // And it clearly beats equal static shares.
  const fixed = mean(play(new StaticAllocator(), 500, 7));
  assert.ok(late > fixed * 1.1, `learned ${late.toFixed(3)} vs static ${fixed.toFixed(3)}`);
});

allocator('a generator that misses the deadline is cut to the exploration floor', () => {
  const learned = new ThompsonAllocator({ units, minShare: 0.05, halfLifeRequests: Infinity, seed: 3 });
  play(learned, 600, 9, 'a'); // 'a' is the most valuable, but always times out
  const quotas = learned.allocate('home', k, names);
  assert.is(quotas.a, 2, `quota of the late generator: ${quotas.a}`);
  assert.ok(learned.health('home').a!.timeoutRate > 0.9);
});

allocator('state survives a restart through the state file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cangen-alloc-'));
  try {
    const file = join(dir, 'state.json');
    const options = { dim: 4, scenarios: [{ name: 'home', generators: ['two-tower', 'scorer', 'content', 'popularity'] }], stateFile: file };
    const first = new CandidateEngine({ ...options, allocatorOptions: { units, halfLifeRequests: Infinity, seed: 1 } });
    const trained = first.allocator as ThompsonAllocator;
    // Teach it the synthetic problem under the engine's generator names.
    const alias = new Map([['two-tower', 'a'], ['scorer', 'b'], ['content', 'c']]);
    const random = rng(5);
    for (let t = 0; t < 1500; t++) {
      const q = trained.allocate('home', k, ['two-tower', 'scorer', 'content']);
      trained.recordServed('home', k, Object.entries(q).map(([generator, kept]) => ({ generator, status: 'ok', kept, ms: 2 })), 50);
      for (const [source, quota] of Object.entries(q)) {
        const g = names.indexOf(alias.get(source)!);
        for (let rank = 0; rank < quota; rank++) {
          if (random() < value(g, Math.floor((rank * units) / k))) trained.recordFeedback({ type: 'click', adId: 1n, scenario: 'home', source, rank, k }, 1);
        }
      }
    }
    first.popularity.observe({ type: 'click', adId: 77n, scenario: 'home', source: 'two-tower', rank: 0, k });
    await first.saveState();
    first.close();

    const second = new CandidateEngine({ ...options, allocatorOptions: { units, halfLifeRequests: Infinity, seed: 2 } });
    assert.ok(await second.restoreState());
    const restored = second.allocator as ThompsonAllocator;
    const generators = ['two-tower', 'scorer', 'content'];
    assert.equal(restored.expectedShares('home', generators), trained.expectedShares('home', generators));
    assert.equal(restored.saveState(), trained.saveState());
    const top = await second.popularity.generate({ request: { userId: 'u', scenario: 'home' }, features: {}, scenario: 'home', quota: 1, fetch: 1, signal: new AbortController().signal });
    assert.equal(top.map((c) => c.adId), [77n]);
    // The file is whole JSON written atomically (no temp files left behind).
    const saved = JSON.parse(await readFile(file, 'utf8')) as { format: string };
    assert.is(saved.format, 'cangen-state');
    second.close();

    // A corrupt or foreign file is a typed error, not a silent reset.
    await writeFile(file, '{"format":"cangen-state","vers');
    const third = new CandidateEngine(options);
    await third.restoreState().then(() => assert.unreachable('expected StateFileError'), (error) => {
      assert.instance(error, StateFileError);
      assert.is((error as StateFileError).code, 'ERR_STATE_FILE');
      assert.match((error as Error).message, /Expected JSON in state file/);
    });
    await writeFile(file, JSON.stringify({ format: 'cangen-state', version: 1, state: { allocator: { kind: 'thompson', version: 1, units: 10, scenarios: {} } } }));
    await third.restoreState().then(() => assert.unreachable('expected StateFileError'), (error) => assert.match((error as Error).message, /with 20 units but received 10/));
    // No file yet: a fresh start.
    assert.is(await third.restoreState(join(dir, 'missing.json')), false);
    third.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

allocator.run();
