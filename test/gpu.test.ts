import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, buildInfo, FlatIndex, type Metric } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { assertExact, bruteForce, offsetsOf } from './helpers/reference';

const gpu = suite('GPU exact search equals the CPU path and the float64 reference');
const info = buildInfo();
const usable = info.cudaDevices > 0;
const test = usable ? gpu : gpu.skip;
if (!usable) console.log(`skipped: no CUDA device (${info.cudaDevice})`);

const cases = [
  { n: 1000, dim: 64, nq: 1, k: 10 },
  { n: 100_003, dim: 100, nq: 16, k: 100 },
  { n: 50_000, dim: 128, nq: 256, k: 4096 },
  { n: 300, dim: 32, nq: 3, k: 1000 }, // k > n
];
for (const metric of ['ip', 'l2', 'cosine'] as Metric[]) {
  for (const { n, dim, nq, k } of cases) {
    test(`${metric}: n=${n} dim=${dim} nq=${nq} k=${k}`, async () => {
      const vectors = randomVectors(n, dim, n + dim);
      const ids = sequentialIds(n, 7);
      const queries = randomVectors(nq, dim, nq);
      const index = new FlatIndex({ dim, metric });
      await index.add(ids, vectors);
      const onGpu = await index.search(queries, k, { device: 'gpu' });
      const onCpu = await index.search(queries, k, { device: 'cpu' });
      for (let i = 0; i < onCpu.scores.length; i++) {
        const a = onCpu.scores[i]!;
        const b = onGpu.scores[i]!;
        assert.ok((Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(a)), `rank ${i}: cpu ${a} gpu ${b}`);
      }
      if (n * nq <= 2_000_000) {
        assertExact(onGpu, bruteForce(metric, ids, vectors, queries, dim, k), metric, offsetsOf(ids, dim), vectors, queries, dim);
      }
    });
  }
}

test('adds after a GPU search reach the device copy', async () => {
  const dim = 16;
  const index = new FlatIndex({ dim });
  await index.add(sequentialIds(1000), randomVectors(1000, dim, 1));
  await index.search(randomVectors(1, dim, 2), 5, { device: 'gpu' });
  const extra = new Float32Array(dim).fill(10);
  await index.add([5000], extra);
  const r = await index.search(new Float32Array(dim).fill(1), 1, { device: 'gpu' });
  assert.is(r.ids[0], 5000n);
});

test('AdIndex flat kind: filtered GPU search equals the CPU path', async () => {
  const dim = 48;
  const n = 60_000;
  const index = new AdIndex({ dim, kind: 'flat' });
  await index.upsert(sequentialIds(n), randomVectors(n, dim, 3), Array.from({ length: n }, (_, i) => ({ geo: i % 100 })));
  await index.remove([5, 6, 7]);
  const queries = randomVectors(8, dim, 4);
  for (const filter of [undefined, { geos: [1, 2, 3] }, { geos: [42] }]) {
    const onGpu = await index.search(queries, 50, { device: 'gpu', filter });
    const onCpu = await index.search(queries, 50, { device: 'cpu', filter });
    assert.equal(Array.from(onGpu.counts), Array.from(onCpu.counts));
    for (let i = 0; i < onCpu.scores.length; i++) {
      const a = onCpu.scores[i]!;
      const b = onGpu.scores[i]!;
      assert.ok((Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(a)), `rank ${i}`);
    }
  }
});

gpu.run();
