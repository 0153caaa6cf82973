/**
 * Random user-sequence models written straight into the export format (config.json,
 * model.safetensors, items.txt, actions.txt) without the trainer, and random histories over them,
 * for tests that compare two of cangen's own paths (the GPU encoder against the CPU one, which
 * test/sequence-encoder.test.ts holds to PyTorch). Every tensor the config implies gets seeded
 * normal values scaled as a trained model's roughly are.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedSequenceTensors, type SequenceModelKind } from '../../lib/sequence/config';
import type { SequenceHistories } from '../../lib';
import { randomVectors, rng } from './random';
import { safetensorsBytes, type Tensors } from './scorer-model';

export interface RandomSequenceModel {
  model: SequenceModelKind;
  dim: number;
  layers: number;
  heads: number;
  maxLen: number;
  shortWindow?: number;
  longTerm?: boolean;
  interests?: number;
  timeBuckets?: number;
  useTimes?: boolean;
  numItems: number;
  numActions?: number;
  normalizeQuery?: boolean;
}

/** Writes the model into a fresh temp dir and returns its path. */
export function writeRandomSequenceModel(spec: RandomSequenceModel, seed: number): string {
  const config = {
    format: 'cangen-user-model', version: 1, shortWindow: 0, longTerm: false, interests: 1, timeBuckets: 16, useTimes: true,
    numActions: 0, normalizeQuery: false, ...spec, sideInfo: false, head: 'dot' as const, numFeatures: 0, headNames: [],
  };
  const tensors: Tensors = {};
  let next = seed;
  for (const [name, { shape }] of expectedSequenceTensors(config, 0)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = randomVectors(1, size, next++);
    // Linear weights ~ 1/sqrt(fan-in); norms' gammas around 1; everything else ~ 0.3.
    const scale = name.endsWith('.weight') && shape.length === 2 && !name.startsWith('items.') && !name.startsWith('actions.') && name !== 'item_embeddings'
      ? 1 / Math.sqrt(shape[1]!) : 0.3;
    for (let i = 0; i < size; i++) data[i] = data[i]! * scale + (/norm\.weight$/.test(name) ? 1 : 0);
    tensors[name] = { shape, data };
  }
  const dir = mkdtempSync(join(tmpdir(), 'cangen-sequence-random-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  writeFileSync(join(dir, 'items.txt'), Array.from({ length: spec.numItems }, (_, i) => `item${i + 1}\n`).join(''));
  if (config.numActions > 0) writeFileSync(join(dir, 'actions.txt'), Array.from({ length: config.numActions }, (_, i) => `action${i + 1}\n`).join(''));
  return dir;
}

/**
 * Histories of the given lengths: item rows in [1, numItems] with about one in `unknownEvery`
 * outside it (0, negative, past numItems), actions in [-1, numActions + 1] (out of range: none),
 * times rising by gaps from a second to a month with now and then a step back.
 */
export function randomHistories(lengths: number[], numItems: number, numActions: number, seed: number, unknownEvery = 7): Required<SequenceHistories> {
  const next = rng(seed);
  const total = lengths.reduce((a, b) => a + b, 0);
  const offsets = new Uint32Array(lengths.length + 1);
  lengths.forEach((n, u) => (offsets[u + 1] = offsets[u]! + n));
  const items = new Int32Array(total);
  const actions = new Int32Array(total);
  const times = new Float64Array(total);
  const unknown = [0, -3, numItems + 1, numItems + 1000];
  for (let u = 0; u < lengths.length; u++) {
    let t = 1.7e9 + next() * 1e6;
    for (let e = offsets[u]!; e < offsets[u + 1]!; e++) {
      items[e] = next() * unknownEvery < 1 ? unknown[Math.floor(next() * unknown.length)]! : 1 + Math.floor(next() * numItems);
      actions[e] = Math.floor(next() * (numActions + 3)) - 1;
      t += next() < 0.1 ? -next() * 100 : Math.exp(next() * Math.log(2.6e6));
      times[e] = t;
    }
  }
  return { items, offsets, actions, times };
}

/** Largest |got - want| over each query of `width` values, relative to that query's largest |want|. */
export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>, width: number): number {
  let worst = 0;
  for (let q = 0; q < want.length / width; q++) {
    let scale = 0;
    let diff = 0;
    for (let c = 0; c < width; c++) {
      scale = Math.max(scale, Math.abs(want[q * width + c]!));
      diff = Math.max(diff, Math.abs(got[q * width + c]! - want[q * width + c]!));
    }
    worst = Math.max(worst, diff / Math.max(scale, 1e-30));
  }
  return worst;
}
