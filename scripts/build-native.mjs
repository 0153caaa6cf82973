#!/usr/bin/env node
// Builds the addon with cmake-js (CMakeLists.txt is the source of truth) and puts it where
// node-gyp-build looks: build/Release/cangen.node. Build options come from the environment:
//   CANGEN_WITH_CUDA=OFF            skip the CUDA kernels even when nvcc is found
//   CANGEN_CUDA_ARCHITECTURES=80;90 GPU architectures
//   CANGEN_FAISS=system             use an installed FAISS (find_package) instead of building one
//   CANGEN_FAISS_SOURCE_DIR=/path   build FAISS from this source tree
//   CANGEN_FAISS_OPT_LEVEL=generic  FAISS SIMD level (default avx2)
//   CANGEN_CACHE_DIR=/path          where the FAISS build is cached (default ~/.cache/cangen)
//   CANGEN_BUILD_TYPE=Debug         CMake build type (default Release)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import os from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');

const options = ['CANGEN_WITH_CUDA', 'CANGEN_CUDA_ARCHITECTURES', 'CANGEN_FAISS', 'CANGEN_FAISS_SOURCE_DIR',
  'CANGEN_FAISS_OPT_LEVEL', 'CANGEN_STATIC_BLAS'];
const defines = options.filter((name) => process.env[name]).map((name) => `--CD${name}=${process.env[name]}`);
const buildType = process.env.CANGEN_BUILD_TYPE ?? 'Release';
const jobs = String(process.env.CANGEN_BUILD_JOBS ?? os.availableParallelism());

const args = [cmakeJs, 'build', '--directory', root, '--out', join(root, 'build', 'cmake'),
  '--config', buildType, '--parallel', jobs, ...defines];
console.log(`cangen: cmake-js ${args.slice(1).join(' ')}`);
const run = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (run.status !== 0) {
  console.error(`cangen: the native build failed (exit ${run.status}). It needs cmake >= 3.18, a C++17 compiler,\n` +
    'OpenMP, OpenBLAS (apt install libopenblas-dev) and, to build FAISS, apt-get source access or\n' +
    'CANGEN_FAISS_SOURCE_DIR; or set CANGEN_FAISS=system to use an installed FAISS. See README "Building".');
  process.exit(run.status ?? 1);
}
const target = join(root, 'build', 'Release', 'cangen.node');
mkdirSync(dirname(target), { recursive: true });
copyFileSync(join(root, 'build', 'cmake', buildType, 'cangen.node'), target);
console.log(`cangen: built ${target}`);
