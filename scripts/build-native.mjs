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
//   CANGEN_SYSTEM_PACKAGES=never    never install missing build packages (see build-prereqs.mjs)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import os from 'node:os';
import { ensurePrerequisites, isDevelopmentCheckout, onPath } from './build-prereqs.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const options = ['CANGEN_WITH_CUDA', 'CANGEN_CUDA_ARCHITECTURES', 'CANGEN_FAISS', 'CANGEN_FAISS_SOURCE_DIR',
  'CANGEN_FAISS_OPT_LEVEL', 'CANGEN_STATIC_BLAS'];
const defines = options.filter((name) => process.env[name]).map((name) => `--CD${name}=${process.env[name]}`);
const buildType = process.env.CANGEN_BUILD_TYPE ?? 'Release';
const jobs = String(process.env.CANGEN_BUILD_JOBS ?? os.availableParallelism());

const buildDir = join(root, 'build', 'cmake');

if (!ensurePrerequisites({ root, mayInstall: isDevelopmentCheckout(root) })) process.exit(1);

/**
 * Why an existing build directory cannot be built in again, or null. A configure that failed or
 * was interrupted leaves a CMakeCache.txt without build files; a checkout that moved, or a
 * generator that changed (cmake-js takes Ninja whenever ninja is on PATH), makes CMake refuse it.
 */
function staleReason() {
  const cache = join(buildDir, 'CMakeCache.txt');
  if (!existsSync(cache)) return null;
  const text = readFileSync(cache, 'utf8');
  const home = /^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$/m.exec(text)?.[1];
  if (home && home !== root) return `it was configured for ${home}`;
  const generator = /^CMAKE_GENERATOR:INTERNAL=(.*)$/m.exec(text)?.[1];
  const wanted = onPath('ninja') ? 'Ninja' : 'Unix Makefiles';
  if (generator !== wanted) return `it was configured for ${generator ?? 'an unknown generator'}, this build uses ${wanted}`;
  const buildFile = generator === 'Ninja' ? 'build.ninja' : 'Makefile';
  if (!existsSync(join(buildDir, buildFile))) return `its last configure did not finish (no ${buildFile})`;
  return null;
}

function build() {
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const args = [cmakeJs, 'build', '--directory', root, '--out', buildDir, '--config', buildType, '--parallel', jobs, ...defines];
  console.log(`cangen: cmake-js ${args.slice(1).join(' ')}`);
  return spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root }).status;
}

const stale = staleReason();
if (stale) {
  console.log(`cangen: removing the build directory ${buildDir}: ${stale}`);
  rmSync(buildDir, { recursive: true, force: true });
}
let status = build();
if (status !== 0 && existsSync(buildDir) && staleReason()) {
  // The configure step itself failed: start once more from an empty directory, so that a cache
  // entry from the failed attempt cannot be what fails the next one.
  console.log('cangen: the configure step failed; retrying once from an empty build directory');
  rmSync(buildDir, { recursive: true, force: true });
  status = build();
}
if (status !== 0) {
  console.error(`cangen: the native build failed (exit ${status}). It needs cmake >= 3.18, a C++17 compiler,\n` +
    'OpenMP, OpenBLAS (apt install libopenblas-dev) and, to build FAISS, apt-get source access or\n' +
    'CANGEN_FAISS_SOURCE_DIR; or set CANGEN_FAISS=system to use an installed FAISS. See README "Building".');
  process.exit(status ?? 1);
}
const target = join(root, 'build', 'Release', 'cangen.node');
mkdirSync(dirname(target), { recursive: true });
copyFileSync(join(root, 'build', 'cmake', buildType, 'cangen.node'), target);
console.log(`cangen: built ${target}`);
