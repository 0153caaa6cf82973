import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LearnedScorer } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, safetensorsBytes, tempDir, writeModel, type Config } from './helpers/scorer-model';
import { rejects } from './helpers/rejects';

const errors = suite('scorer bad input gives typed errors');

const config: Config = {
  kind: 'mlp', userDim: 8, itemDim: 8, heads: ['click', 'conversion'], mlp: { hidden: [16] },
  scenarios: { home: { click: 1 }, search: { click: 1, conversion: 0.5 } },
};

async function loaded(): Promise<LearnedScorer> {
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)));
  await scorer.add(sequentialIds(40), randomVectors(40, 8, 1));
  return scorer;
}

errors('unknown scenario and head, no scenario for a multi-head model', async () => {
  const scorer = await loaded();
  const users = randomVectors(1, 8, 2);
  await rejects(scorer.search(users, 5, { scenario: 'hmoe' }), 'ERR_UNKNOWN_SCENARIO', /'home', 'search'/);
  await rejects(scorer.search(users, 5, { weights: { clikc: 1 } }), 'ERR_UNKNOWN_HEAD', /'click', 'conversion'/);
  await rejects(scorer.search(users, 5), 'ERR_INVALID_ARGUMENT', /options.scenario/);
  await rejects(scorer.search(users, 5, { scenario: 'home', weights: { click: 1 } }), 'ERR_INVALID_ARGUMENT', /not both/);
  await rejects(scorer.search(users, 5, { scenario: 'home', devcie: 'gpu' } as never), 'ERR_INVALID_ARGUMENT', /did you mean 'device'/);
});

errors('user and ad dimensions that do not match the model', async () => {
  const scorer = await loaded();
  await rejects(scorer.search(randomVectors(1, 7, 2), 5, { scenario: 'home' }), 'ERR_DIMENSION_MISMATCH', /userDim 8/);
  await rejects(scorer.add([100], new Float32Array(9)), 'ERR_DIMENSION_MISMATCH', /itemDim 8/);
  await rejects(scorer.add([100], new Float32Array(8).fill(NaN)), 'ERR_NON_FINITE', /embeddings\[0\]\[0\]/);
  await rejects(scorer.add([0], new Float32Array(8)), 'ERR_DUPLICATE_ID', /already present/);
  await rejects(scorer.search(new Float32Array(8).fill(Infinity), 5, { scenario: 'home' }), 'ERR_NON_FINITE', /users\[0\]\[0\]/);
  await rejects(scorer.search(randomVectors(1, 8, 3), 5, { scenario: 'home', eligible: new Uint8Array(39) }), 'ERR_DIMENSION_MISMATCH', /one byte per ad \(40\)/);
  await rejects(scorer.search(randomVectors(1, 8, 3), 5, { scenario: 'home', candidates: new BigInt64Array([1n, 999n]) }), 'ERR_INVALID_ARGUMENT', /999 is not one of them/);
  await rejects(scorer.search(randomVectors(2, 8, 3), 5, { scenario: 'home', candidates: new BigInt64Array(3) }), 'ERR_DIMENSION_MISMATCH', /users \(2\) x K/);
  scorer.close();
  await rejects(() => scorer.search(randomVectors(1, 8, 3), 5), 'ERR_CLOSED', /closed/);
});

errors('weights whose shapes contradict the config, NaN, missing or extra tensors', async () => {
  const good = randomTensors(config);
  const wrongShape = { ...good, 'mlp.layers.0.weight': { shape: [16, 23], data: new Float32Array(16 * 23) } };
  await rejects(LearnedScorer.load(writeModel(config, wrongShape)), 'ERR_MODEL_FORMAT', /'mlp.layers.0.weight' has shape \[16, 23\] but config.json implies \[16, 24\]/);
  const nan = { ...good, 'mlp.out.bias': { shape: [2], data: new Float32Array([0, NaN]) } };
  await rejects(LearnedScorer.load(writeModel(config, nan)), 'ERR_MODEL_FORMAT', /'mlp.out.bias' holds NaN at flat index 1/);
  const { ['mlp.out.weight']: _, ...missing } = good;
  await rejects(LearnedScorer.load(writeModel(config, missing)), 'ERR_MODEL_FORMAT', /missing tensor 'mlp.out.weight' of shape \[2, 16\]/);
  const extra = { ...good, 'mlp.layers.1.weight': { shape: [1], data: new Float32Array(1) } };
  await rejects(LearnedScorer.load(writeModel(config, extra)), 'ERR_MODEL_FORMAT', /unexpected tensor 'mlp.layers.1.weight'/);
  // The config contradicts the weights the other way round: widths changed, heads added.
  await rejects(LearnedScorer.load(writeModel({ ...config, mlp: { hidden: [17] } }, good)), 'ERR_MODEL_FORMAT', /implies \[17, 24\]/);
  await rejects(LearnedScorer.load(writeModel({ ...config, heads: ['click', 'conversion', 'x'] }, good)), 'ERR_MODEL_FORMAT', /implies \[3, 16\]/);
});

errors('truncated, corrupt or missing files and bad configs', async () => {
  const dir = writeModel(config, randomTensors(config));
  const file = join(dir, 'model.safetensors');
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length - 10));
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /spans bytes .* data section has .* \(truncated\?\)/);
  writeFileSync(file, bytes.subarray(0, 100));
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /header claims \d+ bytes/);
  writeFileSync(file, bytes.subarray(0, 5));
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /fewer than the 8-byte header/);
  const corrupt = Buffer.from(bytes);
  corrupt[8] = 0x5b; // the header's opening '{' becomes '['
  writeFileSync(file, corrupt);
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /header is not JSON/);
  const halfDtype = safetensorsBytes({ x: { shape: [1], data: new Float32Array(1) } }).toString('latin1').replace('"F32"', '"I32"');
  writeFileSync(file, Buffer.from(halfDtype, 'latin1'));
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /dtype "I32"/);
  rmSync(file);
  await rejects(LearnedScorer.load(dir), 'ERR_MODEL_FORMAT', /no such file/);

  const bad = (c: Config, pattern: RegExp) => rejects(LearnedScorer.load(writeModel(c, randomTensors(config))), 'ERR_MODEL_FORMAT', pattern);
  await bad({ ...config, kind: 'tree' }, /expected kind 'dot', 'mlp' or 'mol'/);
  await bad({ ...config, userDim: 0 }, /userDim/);
  await bad({ ...config, scenarios: { home: { clik: 1 } } }, /scenario 'home' weighs head 'clik'/);
  await bad({ ...config, mlp: { hidden: [16], features: ['user'] } }, /needs 'item' or 'cross'/);
  await bad({ ...config, hiden: 3 }, /unknown field 'hiden'/);
  const dir2 = tempDir();
  writeFileSync(join(dir2, 'config.json'), '{ "kind": ');
  writeFileSync(join(dir2, 'model.safetensors'), safetensorsBytes({}));
  await rejects(LearnedScorer.load(dir2), 'ERR_MODEL_FORMAT', /not valid JSON/);
});

errors.run();
