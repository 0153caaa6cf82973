import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import os from 'node:os';
import { buildInfo, measureCeilings } from '../lib';

const info = suite('build and machine information');

info('reports versions, SIMD, CUDA and threads', () => {
  const b = buildInfo();
  assert.match(b.version, /^\d+\.\d+\.\d+$/);
  assert.is(b.faissVersion, '1.7.3');
  assert.ok(['avx2', 'generic'].includes(b.faissSimd));
  assert.ok(['avx2', 'avx512'].includes(b.scanSimd));
  assert.ok(['avx2', 'avx512'].includes(b.sequenceSimd), b.sequenceSimd);
  assert.type(b.cudaCompiled, 'boolean');
  assert.ok(Number.isInteger(b.cudaDevices) && b.cudaDevices >= 0);
  if (b.cudaDevices === 0) assert.ok(b.cudaDevice.length > 0, 'says why there is no device');
  assert.is(b.threads, os.availableParallelism());
});

info('measures plausible ceilings', async () => {
  const c = await measureCeilings(1, 64);
  assert.ok(c.peakFlops > 1e9 && c.peakFlops < 1e13, `peakFlops ${c.peakFlops}`);
  assert.ok(c.readBandwidth > 1e8 && c.readBandwidth < 1e13, `readBandwidth ${c.readBandwidth}`);
});

info.run();
