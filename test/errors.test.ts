import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  buildInfo,
  CangenError,
  ClosedError,
  DimensionMismatchError,
  DuplicateIdError,
  FlatIndex,
  InvalidArgumentError,
  NoDeviceError,
  NonFiniteError,
} from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';

const errors = suite('bad input gives typed errors and loses nothing');

async function rejectsWith(promise: Promise<unknown>, ErrorClass: new (...a: never[]) => CangenError, code: string, text: RegExp) {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, ErrorClass);
    assert.instance(error, CangenError);
    assert.is((error as CangenError).code, code);
    assert.match((error as Error).message, text);
    return;
  }
  assert.unreachable(`expected ${ErrorClass.name}`);
}

function throwsWith(fn: () => unknown, ErrorClass: new (...a: never[]) => CangenError, text: RegExp) {
  try {
    fn();
  } catch (error) {
    assert.instance(error, ErrorClass);
    assert.match((error as Error).message, text);
    return;
  }
  assert.unreachable(`expected ${ErrorClass.name}`);
}

errors('constructor options are checked, misspellings named', () => {
  throwsWith(() => new FlatIndex({ dim: 0 }), InvalidArgumentError, /Expected an integer between 1 and 65536 for FlatIndex options.dim but received number 0/);
  throwsWith(() => new FlatIndex({ dim: 4, metric: 'dot' as never }), InvalidArgumentError, /one of 'ip', 'l2', 'cosine'.*the string 'dot'/);
  throwsWith(() => new FlatIndex({ dim: 4, metirc: 'l2' } as never), InvalidArgumentError, /Unknown option 'metirc'.*did you mean 'metric'/);
  throwsWith(() => new FlatIndex(undefined as never), InvalidArgumentError, /at least \{ dim \}/);
});

errors('wrong dimension', async () => {
  const index = new FlatIndex({ dim: 4 });
  await rejectsWith(index.add([1, 2], new Float32Array(7)), DimensionMismatchError, 'ERR_DIMENSION_MISMATCH', /Expected 2 x 4 = 8 values for vectors.*received 7/);
  await rejectsWith(index.search(new Float32Array(6), 1), DimensionMismatchError, 'ERR_DIMENSION_MISMATCH', /multiple of dim 4.*received 6/);
  assert.is(index.size, 0);
});

errors('non-finite values are rejected and nothing is added', async () => {
  const index = new FlatIndex({ dim: 3 });
  await index.add([1], new Float32Array([1, 2, 3]));
  const bad = new Float32Array([1, 2, 3, 4, NaN, 6]);
  await rejectsWith(index.add([2, 3], bad), NonFiniteError, 'ERR_NON_FINITE', /vectors\[1\]\[1\] is nan/);
  await rejectsWith(index.add([2], new Float32Array([Infinity, 0, 0])), NonFiniteError, 'ERR_NON_FINITE', /vectors\[0\]\[0\] is inf/);
  assert.is(index.size, 1);
  await rejectsWith(index.search(new Float32Array([0, -Infinity, 0]), 1), NonFiniteError, 'ERR_NON_FINITE', /queries\[0\]\[1\]/);
  const r = await index.search(new Float32Array([1, 0, 0]), 5);
  assert.equal(Array.from(r.row(0).ids), [1n]);
});

errors('bad k', async () => {
  const index = new FlatIndex({ dim: 2 });
  for (const k of [0, -1, 1.5, NaN, '3' as unknown as number]) {
    await rejectsWith(index.search(new Float32Array(2), k), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /for k but received/);
  }
});

errors('wrong types', async () => {
  const index = new FlatIndex({ dim: 2 });
  await rejectsWith(index.add([1], [1, 2] as unknown as Float32Array), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /Expected a Float32Array for vectors but received an Array of length 2/);
  await rejectsWith(index.add([1], new Float64Array(2) as unknown as Float32Array), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /Float32Array for vectors but received a Float64Array/);
  await rejectsWith(index.add('1' as never, new Float32Array(2)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /integer ids for ids/);
  await rejectsWith(index.add([1.5], new Float32Array(2)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /safe integer >= 0.*ids\[0\]/);
  await rejectsWith(index.add([-1], new Float32Array(2)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /ids\[0\]/);
  await rejectsWith(index.add(new BigInt64Array([-5n]), new Float32Array(2)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /ids >= 0/);
  await rejectsWith(index.search(new Float32Array(2), 1, { devcie: 'gpu' } as never), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /did you mean 'device'/);
  await rejectsWith(index.search(new Float32Array(2), 1, { device: 'tpu' as never }), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /'cpu', 'gpu', 'auto'/);
  assert.is(index.size, 0);
});

errors('duplicate ids: all or nothing', async () => {
  const dim = 8;
  const index = new FlatIndex({ dim, metric: 'l2' });
  const vectors = randomVectors(10, dim, 3);
  await index.add(sequentialIds(10), vectors);
  const more = randomVectors(3, dim, 4);
  await rejectsWith(index.add([100, 5, 101], more), DuplicateIdError, 'ERR_DUPLICATE_ID', /id 5 is already present; nothing was added/);
  await rejectsWith(index.add([100, 101, 100], more), DuplicateIdError, 'ERR_DUPLICATE_ID', /id 100 appears twice in this batch/);
  assert.is(index.size, 10);
  // The old ads are intact and the rejected ones absent.
  const r = await index.search(vectors.subarray(5 * dim, 6 * dim), 11);
  assert.is(r.row(0).ids[0], 5n);
  assert.is(r.counts[0], 10);
  assert.not.ok(Array.from(r.row(0).ids).includes(100n));
});

errors('cosine rejects zero vectors', async () => {
  const index = new FlatIndex({ dim: 2, metric: 'cosine' });
  await rejectsWith(index.add([1], new Float32Array(2)), InvalidArgumentError, 'ERR_INVALID_ARGUMENT', /non-zero vectors for the cosine metric/);
});

errors('use after close', async () => {
  const index = new FlatIndex({ dim: 2 });
  await index.add([1], new Float32Array([1, 1]));
  const pending = index.search(new Float32Array([1, 1]), 1);
  index.close();
  assert.is((await pending).ids[0], 1n, 'a search already started finishes');
  assert.ok(index.closed);
  await rejectsWith(index.search(new Float32Array(2), 1), ClosedError, 'ERR_CLOSED', /closed/);
  await rejectsWith(index.add([2], new Float32Array(2)), ClosedError, 'ERR_CLOSED', /closed/);
  throwsWith(() => index.size, ClosedError, /closed/);
  index.close(); // twice is fine
});

errors('a GPU requested where none exists', async () => {
  if (buildInfo().cudaDevices > 0) {
    console.log('  (this machine has a CUDA device: checking the out-of-range ordinal instead)');
    const index = new FlatIndex({ dim: 2 });
    await index.add([1], new Float32Array([1, 1]));
    await rejectsWith(index.search(new Float32Array(2), 1, { device: 'gpu', gpuDevice: 1000 }), NoDeviceError, 'ERR_NO_DEVICE', /device/);
    return;
  }
  const index = new FlatIndex({ dim: 2 });
  await index.add([1], new Float32Array([1, 1]));
  await rejectsWith(index.search(new Float32Array(2), 1, { device: 'gpu' }), NoDeviceError, 'ERR_NO_DEVICE', /CUDA/);
  const auto = await index.search(new Float32Array([1, 1]), 1, { device: 'auto' });
  assert.is(auto.ids[0], 1n, "'auto' falls back to the CPU");
});

errors('a native error carries the caller stack', async () => {
  const index = new FlatIndex({ dim: 1 });
  try {
    await index.add([1], new Float32Array([NaN]));
  } catch (error) {
    assert.match((error as Error).stack ?? '', /errors\.test\.ts/);
    return;
  }
  assert.unreachable();
});

errors.run();
