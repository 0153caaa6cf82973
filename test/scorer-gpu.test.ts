import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildInfo, LearnedScorer } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';

const gpu = suite('GPU scorer scan equals the CPU scan');
const info = buildInfo();
const usable = info.cudaDevices > 0;
const test = usable ? gpu : gpu.skip;
if (!usable) console.log(`skipped: no CUDA device (${info.cudaDevice})`);

const models: Config[] = [
  { kind: 'dot', userDim: 32, itemDim: 32, heads: ['s'] },
  { kind: 'mlp', userDim: 64, itemDim: 64, heads: ['click'], mlp: { hidden: [256, 128] } },
  { kind: 'mlp', userDim: 10, itemDim: 14, heads: ['a', 'b'], activation: 'silu', mlp: { hidden: [37, 19], features: ['user', 'item'], layerNorm: true }, scenarios: { s: { a: 1, b: 0.5 } }, defaultScenario: 's' },
  { kind: 'mol', userDim: 64, itemDim: 64, heads: ['click'], mol: { queryComponents: 8, itemComponents: 4, componentDim: 64, gatingWidth: 128, temperature: 0.05 } },
  { kind: 'mol', userDim: 11, itemDim: 13, heads: ['a', 'b', 'c'], activation: 'silu', mol: { queryComponents: 3, itemComponents: 5, componentDim: 7, gatingWidth: 19, temperature: 0.5 }, scenarios: { s: { a: 1, c: 2 } }, defaultScenario: 's' },
];

for (const config of models) {
  for (const { n, nu, k } of [{ n: 5003, nu: 1, k: 10 }, { n: 100_000, nu: 16, k: 1000 }, { n: 300, nu: 3, k: 500 }]) {
    test(`${config.kind} ${JSON.stringify(config.mlp ?? config.mol ?? {})}: n=${n} users=${nu} k=${k}`, async () => {
      const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
      await scorer.add(sequentialIds(n), randomVectors(n, config.itemDim, n));
      const users = randomVectors(nu, config.userDim, nu);
      const mask = new Uint8Array(n).map((_, i) => (i % 5 ? 1 : 0));
      for (const eligible of [undefined, mask]) {
        const cpu = await scorer.search(users, k, { eligible });
        const onGpu = await scorer.search(users, k, { eligible, device: 'gpu' });
        assert.equal(Array.from(onGpu.counts), Array.from(cpu.counts));
        for (let i = 0; i < cpu.scores.length; i++) {
          const a = cpu.scores[i]!, b = onGpu.scores[i]!;
          assert.ok((Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a)), `rank ${i}: cpu ${a} gpu ${b}`);
        }
      }
    });
  }
}

// Launch limits (scorer/gpu_scan_plan.h): a model whose activations exceed the device's shared
// memory runs on the CPU and says so; more users than a grid's y dimension (65,535) are batched.
test('a model too wide for shared memory falls back to the CPU, reported in gpuFallback', async () => {
  const config: Config = { kind: 'mlp', userDim: 16, itemDim: 16, heads: ['click'], mlp: { hidden: [1024, 16] } };
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  await scorer.add(sequentialIds(2000), randomVectors(2000, 16, 3));
  const users = randomVectors(2, 16, 4);
  const cpu = await scorer.search(users, 20);
  const onGpu = await scorer.search(users, 20, { device: 'gpu' });
  assert.ok(onGpu.gpuFallback?.includes('too wide'), `gpuFallback: ${onGpu.gpuFallback}`);
  assert.is(cpu.gpuFallback, undefined);
  assert.equal(Array.from(onGpu.ids), Array.from(cpu.ids));
});

test('more users than a grid dimension holds (70,000) are searched in batches', async () => {
  const config = models[0]!;
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  await scorer.add(sequentialIds(600), randomVectors(600, config.itemDim, 5));
  const nu = 70_000;
  const users = randomVectors(nu, config.userDim, 6);
  const cpu = await scorer.search(users, 5);
  const onGpu = await scorer.search(users, 5, { device: 'gpu' });
  assert.is(onGpu.gpuFallback, undefined);
  assert.equal(Array.from(onGpu.counts), Array.from(cpu.counts));
  let mismatched = 0;
  for (let i = 0; i < cpu.scores.length; i++) {
    if (Math.abs(cpu.scores[i]! - onGpu.scores[i]!) > 1e-4 * Math.max(1, Math.abs(cpu.scores[i]!))) mismatched++;
  }
  assert.is(mismatched, 0, `users beyond the first 65,535 differ: ${mismatched} scores`);
});

gpu('device: gpu without a device rejects with NoDeviceError', async () => {
  if (usable) return;
  const config = models[0]!;
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  await scorer.add([1], new Float32Array(32));
  try {
    await scorer.search(new Float32Array(32), 1, { device: 'gpu' });
    assert.unreachable();
  } catch (error) {
    assert.is((error as { code: string }).code, 'ERR_NO_DEVICE');
  }
});

gpu.run();
