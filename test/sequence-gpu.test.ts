/**
 * SequenceEncoder on a CUDA device against the CPU path (which test/sequence-encoder.test.ts holds
 * to PyTorch): random HSTU and SASRec models with and without times, actions, a short window, the
 * long-term fusion and several interests, windows longer than one key tile, histories of length
 * 0, 1, 2, L-1, L and longer than L, unknown ids, and a batch of several hundred users, to 1e-4
 * relative. Skipped (with a line saying why) without a device. Everywhere: the device option's
 * rules ('gpu' without a device rejects with NoDeviceError, 'auto' falls back to the CPU, bad values).
 */
import { rmSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildInfo, SequenceEncoder, type SequenceHistories } from '../lib';
import { rejects } from './helpers/rejects';
import { maxRelativeError as relativeError, randomHistories, writeRandomSequenceModel, type RandomSequenceModel } from './helpers/sequence-random';

const info = buildInfo();
const usable = info.cudaDevices > 0;
const parity = suite('SequenceEncoder on the GPU equals the CPU');
const test = usable ? parity : parity.skip;
if (!usable) console.log(`skipped: no CUDA device (${info.cudaDevice})`);

const dirs: string[] = [];
async function load(spec: RandomSequenceModel, seed: number): Promise<SequenceEncoder> {
  const dir = writeRandomSequenceModel(spec, seed);
  dirs.push(dir);
  return SequenceEncoder.load(dir);
}
for (const s of [parity]) s.after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function maxRelativeError(got: Float32Array, want: Float32Array, width: number): number {
  assert.is(got.length, want.length);
  return relativeError(got, want, width);
}

const models: { name: string; spec: RandomSequenceModel }[] = [
  { name: 'times and actions, 2 layers, d 32', spec: { model: 'hstu', dim: 32, layers: 2, heads: 2, maxLen: 12, numItems: 50, numActions: 3, normalizeQuery: true } },
  { name: 'no times, 3 heads of 8, short window, long term, 3 interests', spec: { model: 'hstu', dim: 24, layers: 3, heads: 3, maxLen: 20, shortWindow: 5, longTerm: true, interests: 3, useTimes: false, numItems: 30 } },
  { name: 'windows of 200 (two key tiles), d 64, 4 heads', spec: { model: 'hstu', dim: 64, layers: 2, heads: 4, maxLen: 200, timeBuckets: 64, numItems: 500, numActions: 2 } },
  { name: 'd 100 (partial linear tiles), 1 layer, 1 head', spec: { model: 'hstu', dim: 100, layers: 1, heads: 1, maxLen: 33, numItems: 70 } },
  { name: 'SASRec with actions, 2 blocks, d 16', spec: { model: 'sasrec', dim: 16, layers: 2, heads: 2, maxLen: 10, numItems: 20, numActions: 2 } },
  { name: 'SASRec, windows of 140, short window, long term, 2 interests', spec: { model: 'sasrec', dim: 24, layers: 2, heads: 3, maxLen: 140, shortWindow: 4, longTerm: true, interests: 2, numItems: 90, normalizeQuery: true } },
];

// Lengths 0, 1, 2, L-1, L, L+7 and a user with only unknown ids, then `extra` users of random lengths.
function histories(L: number, numItems: number, numActions: number, seed: number, extra = 0): Required<SequenceHistories> {
  const lengths = [0, 1, 2, L - 1, L, L + 7, 3];
  for (let u = 0; u < extra; u++) lengths.push((u * 7919 + seed) % (L + 4));
  const h = randomHistories(lengths, numItems, numActions, seed);
  h.items.subarray(h.offsets[6]!, h.offsets[7]!).set([0, -1, numItems + 1]);
  return h;
}

for (const { name, spec } of models) {
  test(`${name}: every history shape, with and without times and actions, to 1e-4`, async () => {
    const encoder = await load(spec, 11);
    try {
      const all = histories(spec.maxLen, spec.numItems, spec.numActions ?? 0, 5);
      const width = encoder.interests * encoder.dim;
      for (const h of [all, { items: all.items, offsets: all.offsets }, { items: all.items, offsets: all.offsets, times: all.times }, { items: all.items, offsets: all.offsets, actions: all.actions }]) {
        const cpu = await encoder.encode(h);
        const gpu = await encoder.encode(h, { device: 'gpu' });
        assert.ok(gpu.every(Number.isFinite), 'non-finite GPU output');
        const error = maxRelativeError(gpu, cpu, encoder.dim);
        assert.ok(error <= 1e-4, `${Object.keys(h).join(',')}: max relative error ${error}`);
        // The padding window (no events) and only unknown ids give the same no-history query there too.
        assert.equal(Array.from(gpu.subarray(0, width)), Array.from(gpu.subarray(6 * width, 7 * width)));
      }
    } finally {
      encoder.close();
    }
  });
}

test('a batch of 600 users (several per launch) equals the CPU, and so does each user alone', async () => {
  const spec = models[2]!.spec;
  const encoder = await load(spec, 12);
  try {
    const h = histories(spec.maxLen, spec.numItems, spec.numActions ?? 0, 9, 593);
    const cpu = await encoder.encode(h);
    const gpu = await encoder.encode(h, { device: 'gpu' });
    const error = maxRelativeError(gpu, cpu, encoder.dim);
    console.log(`  600 users, L ${spec.maxLen}: max relative error ${error.toExponential(2)} vs the CPU`);
    assert.ok(error <= 1e-4, `max relative error ${error}`);
    // A user's query does not depend on the batch around it.
    for (const u of [0, 5, 321]) {
      const [b, e] = [h.offsets[u]!, h.offsets[u + 1]!];
      const alone = await encoder.encode(
        { items: h.items.slice(b, e), offsets: Uint32Array.of(0, e - b), actions: h.actions.slice(b, e), times: h.times.slice(b, e) },
        { device: 'gpu' },
      );
      assert.ok(maxRelativeError(alone, gpu.subarray(u * encoder.dim, (u + 1) * encoder.dim), encoder.dim) <= 1e-5, `user ${u} alone`);
    }
  } finally {
    encoder.close();
  }
});

test('concurrent GPU encodes on one encoder each get their own answer', async () => {
  const spec = models[0]!.spec;
  const encoder = await load(spec, 13);
  try {
    const batches = [1, 2, 3, 4].map((seed) => histories(spec.maxLen, spec.numItems, spec.numActions ?? 0, seed, 40));
    const cpu = await Promise.all(batches.map((h) => encoder.encode(h)));
    const gpu = await Promise.all(batches.map((h) => encoder.encode(h, { device: 'gpu' })));
    for (let i = 0; i < batches.length; i++) assert.ok(maxRelativeError(gpu[i]!, cpu[i]!, encoder.dim) <= 1e-4, `batch ${i}`);
  } finally {
    encoder.close();
  }
});

parity.run();

const everywhere = suite('SequenceEncoder device option');
const everywhereDirs: string[] = [];
everywhere.after(() => everywhereDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
async function loadHere(spec: RandomSequenceModel): Promise<SequenceEncoder> {
  const dir = writeRandomSequenceModel(spec, 21);
  everywhereDirs.push(dir);
  return SequenceEncoder.load(dir);
}

everywhere("without a device, 'gpu' rejects with NoDeviceError and 'auto' gives the CPU's queries", async () => {
  const spec = models[0]!.spec;
  const encoder = await loadHere(spec);
  try {
    const h = histories(spec.maxLen, spec.numItems, 3, 4, 10);
    const cpu = await encoder.encode(h, { device: 'cpu' });
    assert.equal(Array.from(await encoder.encode(h)), Array.from(cpu), 'the default device is the CPU');
    const auto = await encoder.encode(h, { device: 'auto' });
    if (usable) {
      assert.ok(maxRelativeError(auto, cpu, encoder.dim) <= 1e-4);
      return;
    }
    assert.equal(Array.from(auto), Array.from(cpu));
    await rejects(encoder.encode(h, { device: 'gpu' }), 'ERR_NO_DEVICE', /CUDA|device/);
    await rejects(encoder.encode({ items: new Int32Array(0), offsets: Uint32Array.of(0) }, { device: 'gpu' }), 'ERR_NO_DEVICE', /CUDA|device/);
  } finally {
    encoder.close();
  }
});

everywhere("SASRec under device gpu: the CPU's queries, or NoDeviceError without a device", async () => {
  const encoder = await loadHere({ model: 'sasrec', dim: 8, layers: 1, heads: 1, maxLen: 6, numItems: 9 });
  try {
    const h = { items: Int32Array.of(1, 2), offsets: Uint32Array.of(0, 2) };
    if (usable) assert.ok(maxRelativeError(await encoder.encode(h, { device: 'gpu' }), await encoder.encode(h), 8) <= 1e-4);
    else await rejects(encoder.encode(h, { device: 'gpu' }), 'ERR_NO_DEVICE', /CUDA|device/);
  } finally {
    encoder.close();
  }
});

everywhere('bad device options are refused, and sessions take none', async () => {
  const encoder = await loadHere({ model: 'hstu', dim: 8, layers: 1, heads: 1, maxLen: 6, numItems: 9 });
  try {
    const h = { items: Int32Array.of(1, 2), offsets: Uint32Array.of(0, 2) };
    await rejects(() => encoder.encode(h, { device: 'tpu' as 'gpu' }), 'ERR_INVALID_ARGUMENT', /device/);
    await rejects(() => encoder.encode(h, { device: 'gpu', gpuDevice: -1 }), 'ERR_INVALID_ARGUMENT', /gpuDevice/);
    const sessions = encoder.sessions();
    await rejects(() => sessions.encode(['u'], h, { device: 'gpu' } as never), 'ERR_INVALID_ARGUMENT', /device/);
    sessions.close();
  } finally {
    encoder.close();
  }
});

everywhere.run();
