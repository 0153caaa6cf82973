import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildInfo, LearnedScorer } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, referenceScores, writeModel, type Config } from './helpers/scorer-model';

// The MLP kernels keep a tile's activations in two scratch buffers that the layers alternate
// between; every ordering of layer widths must leave each layer's input intact while it is read.
const widths = suite('MLP scorer: every ordering of layer widths equals the float64 reference');
const gpu = buildInfo().cudaDevices > 0;
if (!gpu) console.log('GPU part skipped: no CUDA device');

const base = {
  format: 'cangen-scorer', version: 1, heads: ['click', 'conversion'],
  scenarios: { feed: { click: 1, conversion: 0.4 } }, defaultScenario: 'feed',
};
const orderings: Record<string, number[]> = {
  'narrow then wide': [16, 64, 64],
  'narrow then much wider': [8, 128, 200],
  'wide then narrow': [256, 128],
  'equal widths': [48, 48, 48],
  'one layer': [40],
  'four layers, wider then narrower': [24, 72, 40, 96],
};

function assertClose(got: Float32Array, want: Float64Array, what: string): void {
  let rms = 0;
  for (const w of want) rms += w * w;
  rms = Math.sqrt(rms / want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-4 * Math.max(Math.abs(want[i]!), rms, 1e-6),
      `${what}: pair ${i}: ${got[i]} vs reference ${want[i]}`);
  }
}

let seed = 4242;
for (const [name, hidden] of Object.entries(orderings)) {
  // [u, x, u*x] folds the user into the first layer per request; [u, x] precomputes it per ad.
  for (const features of [['user', 'item', 'cross'], ['user', 'item']]) {
    for (const layerNorm of [false, true]) {
      const config: Config = {
        ...base, kind: 'mlp', userDim: 32, itemDim: 32, activation: layerNorm ? 'silu' : 'relu',
        mlp: { hidden, features, layerNorm },
      };
      widths(`${name} ${JSON.stringify(hidden)}, features ${features.join('+')}${layerNorm ? ', layer norm' : ''}`, async () => {
        const tensors = randomTensors(config);
        const scorer = await LearnedScorer.load(writeModel(config, tensors));
        const n = 203; // six full tiles and a partial one
        const ads = randomVectors(n, config.itemDim, seed++);
        const ids = sequentialIds(n);
        await scorer.add(ids, ads);
        const users = randomVectors(3, config.userDim, seed++);
        const weights = Array.from(scorer.headWeights());
        const reference = referenceScores(config, tensors, users, ads, weights);
        assertClose(await scorer.score(users), reference, 'score()');

        const top = await scorer.search(users, 5);
        for (let u = 0; u < 3; u++) {
          const best = Math.max(...reference.subarray(u * n, (u + 1) * n));
          assert.ok(Math.abs(top.scores[u * 5]! - best) <= 1e-4 * Math.max(1, Math.abs(best)), `search: user ${u} best ${top.scores[u * 5]} vs ${best}`);
        }
        if (gpu) {
          const onGpu = await scorer.search(users, n, { device: 'gpu' });
          for (let u = 0; u < 3; u++) {
            for (let r = 0; r < n; r++) {
              const slot = Number(onGpu.ids[u * n + r]!);
              const want = reference[u * n + slot]!;
              assert.ok(Math.abs(onGpu.scores[u * n + r]! - want) <= 1e-4 * Math.max(1, Math.abs(want)), `gpu: user ${u} ad ${slot}`);
            }
          }
        }
      });
    }
  }
}

widths.run();
