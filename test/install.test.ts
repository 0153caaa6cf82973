/**
 * The install path of a fresh machine: the source build's prerequisites are found or installed
 * (or explained, with the one command to run) before anything compiles, and a build directory
 * left by a failed configure never breaks the next build.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain ES module script without types
import { findOpenBlas, isDevelopmentCheckout, missingPrerequisites } from '../scripts/build-prereqs.mjs';

type Missing = { tool: string; pkg: string; why: string };
const root = join(__dirname, '..');
const isRoot = process.getuid?.() === 0;

/** A directory holding only `node` and the given shell scripts, to stand in for PATH. */
function fakePath(scripts: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'cangen-path-'));
  chmodSync(dir, 0o755);
  symlinkSync(process.execPath, join(dir, 'node'));
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

const prereqs = suite('build prerequisites');

prereqs('names every missing tool with its Debian package when PATH has none of them', () => {
  const path = fakePath();
  const missing: Missing[] = missingPrerequisites({ env: { PATH: path }, blasDirs: [path] });
  assert.equal(missing.map((m) => m.pkg), ['cmake', 'g++', 'ninja-build', 'libopenblas-dev']);
  for (const m of missing) assert.ok(m.why.length > 10, `${m.pkg} says why`);
  rmSync(path, { recursive: true });
});

prereqs('finds nothing missing on this machine (the build above needed all of it)', () => {
  assert.equal(missingPrerequisites({ env: process.env }), []);
  assert.ok(findOpenBlas(), 'OpenBLAS found');
});

prereqs('rejects a cmake older than 3.18', () => {
  const path = fakePath({ cmake: 'echo "cmake version 3.10.2"', 'g++': 'exit 0', ninja: 'exit 0' });
  const missing: Missing[] = missingPrerequisites({ env: { PATH: path } });
  assert.equal(missing.map((m) => m.pkg), ['cmake']);
  assert.match(missing[0]!.why, /found 3\.10/);
  rmSync(path, { recursive: true });
});

prereqs('installs system packages only in its own checkout', () => {
  assert.ok(isDevelopmentCheckout(root) === existsSync(join(root, '.git')));
  assert.not.ok(isDevelopmentCheckout('/srv/app/node_modules/cangen'));
});

/** Runs the npm install hook as a fresh machine would, with PATH replaced. */
function install(path: string, cwd: string, uid?: number) {
  return spawnSync(process.execPath, [join(cwd, 'scripts', 'install.mjs')], {
    cwd,
    encoding: 'utf8',
    env: { PATH: path, HOME: tmpdir(), CANGEN_BUILD_FROM_SOURCE: '1' },
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
}

prereqs('as root in a checkout: installs the missing packages with apt-get, then re-checks', () => {
  if (!isRoot) {
    console.log('  skipped: needs root (apt-get path)');
    return;
  }
  const log = join(mkdtempSync(join(tmpdir(), 'cangen-apt-')), 'calls');
  const path = fakePath({ 'apt-get': `echo "$@" >> ${log}` });
  const result = install(path, root);
  assert.is(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /installing them with apt-get/);
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  assert.is(calls[0], 'update -qq');
  assert.match(calls[1]!, /^install -y -qq --no-install-recommends cmake g\+\+ ninja-build$/);
  // The stand-in apt-get installed nothing: the build stops before compiling, and says so.
  assert.match(result.stderr, /still missing after apt-get install: cmake g\+\+ ninja-build/);
  assert.not.match(result.stdout + result.stderr, /cmake-js build|CMake Error/);
  rmSync(path, { recursive: true });
});

prereqs('without root: stops before compiling with the one command to run', () => {
  if (!isRoot) {
    console.log('  skipped: needs root to run the hook as another user');
    return;
  }
  // A world-readable copy of the install scripts in a fake checkout, run as `nobody`.
  const checkout = mkdtempSync(join(tmpdir(), 'cangen-checkout-'));
  for (const file of ['install.mjs', 'build-native.mjs', 'build-prereqs.mjs']) {
    cpSync(join(root, 'scripts', file), join(checkout, 'scripts', file));
  }
  mkdirSync(join(checkout, '.git'));
  spawnSync('chmod', ['-R', 'a+rX', checkout]);
  const path = fakePath({ 'apt-get': 'echo "apt-get must not run" >&2; exit 3' });
  const result = install(path, checkout, 65534);
  assert.is(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stderr, /not root, and sudo asks for a password/);
  assert.match(result.stderr, /sudo apt-get update && sudo apt-get install -y --no-install-recommends cmake g\+\+ ninja-build/);
  assert.not.match(result.stderr, /apt-get must not run/);
  rmSync(checkout, { recursive: true });
  rmSync(path, { recursive: true });
});

prereqs.run();

const stale = suite('a stale build directory');

stale('a build left by a failed configure is removed and the next build succeeds', () => {
  // A copy of what the native build reads from this working tree.
  const clone = mkdtempSync(join(tmpdir(), 'cangen-stale-'));
  for (const path of ['native', 'bindings', 'cmake', 'scripts', 'test/native', 'CMakeLists.txt', 'package.json']) {
    cpSync(join(root, path), join(clone, path), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
  const env = { ...process.env, CANGEN_WITH_CUDA: 'OFF' };
  const build = (extra: Record<string, string> = {}) =>
    spawnSync(process.execPath, [join(clone, 'scripts', 'build-native.mjs')], { cwd: clone, encoding: 'utf8', env: { ...env, ...extra } });

  // A real failed configure: FAISS's source tree does not exist.
  const failed = build({ CANGEN_FAISS_SOURCE_DIR: join(clone, 'no-such-faiss') });
  assert.is.not(failed.status, 0);
  assert.ok(existsSync(join(clone, 'build', 'cmake', 'CMakeCache.txt')), 'the failed configure left its cache');

  const next = build();
  assert.is(next.status, 0, next.stdout.slice(-2000) + next.stderr.slice(-2000));
  assert.match(next.stdout, /removing the build directory .*its last configure did not finish/);
  assert.ok(existsSync(join(clone, 'build', 'Release', 'cangen.node')));
  rmSync(clone, { recursive: true, force: true });
});

stale.run();
