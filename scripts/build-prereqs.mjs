// What a source build of the addon needs from the system, checked before anything compiles.
// In a development checkout of cangen on Debian or Ubuntu, missing packages are installed with
// apt-get (as root, or with passwordless sudo), saying what and why. Anywhere else (cangen
// installed as a dependency of another project, no apt, no root), the build stops with the one
// command to run instead of a CMake trace.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, sep } from 'node:path';

/** Where libopenblas is looked for (Debian and Ubuntu multiarch, then the usual prefixes). */
export const OPENBLAS_DIRS = [
  '/usr/lib/x86_64-linux-gnu/openblas-pthread', '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib',
  '/usr/local/lib',
];
const MIN_CMAKE = [3, 18];

/** Runs a command quietly; null when it cannot start. */
function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  return result.error ? null : result;
}

export function onPath(command, env = process.env) {
  return (env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, command)));
}

function cmakeVersion(env) {
  const out = run('cmake', ['--version'], env)?.stdout ?? '';
  const m = /cmake version (\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function findOpenBlas(dirs = OPENBLAS_DIRS) {
  for (const dir of dirs) {
    for (const name of ['libopenblas.a', 'libopenblas.so']) if (existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** The FAISS build's cache prefix, as cmake/Faiss.cmake computes it for the default source. */
function faissCached(env) {
  const root = env.CANGEN_CACHE_DIR ?? (env.XDG_CACHE_HOME ? join(env.XDG_CACHE_HOME, 'cangen') : join(homedir(), '.cache', 'cangen'));
  return existsSync(join(root, `faiss-1.7.3-${env.CANGEN_FAISS_OPT_LEVEL ?? 'avx2'}`, '.complete'));
}

/**
 * The packages a source build lacks: [{ tool, pkg, why }], pkg being the Debian/Ubuntu package.
 * `env` decides PATH and the CANGEN_FAISS* options; `blasDirs` where OpenBLAS is looked for.
 */
export function missingPrerequisites({ env = process.env, blasDirs = OPENBLAS_DIRS } = {}) {
  const missing = [];
  const version = onPath('cmake', env) ? cmakeVersion(env) : null;
  if (!version || version[0] < MIN_CMAKE[0] || (version[0] === MIN_CMAKE[0] && version[1] < MIN_CMAKE[1])) {
    missing.push({ tool: 'cmake', pkg: 'cmake', why: `configures the native build (>= ${MIN_CMAKE.join('.')}${version ? `, found ${version.join('.')}` : ''})` });
  }
  const compiler = env.CXX ?? 'c++';
  if (!onPath(compiler, env) && !onPath('g++', env)) {
    missing.push({ tool: 'g++', pkg: 'g++', why: 'compiles the C++17 core and FAISS (with OpenMP)' });
  }
  if (!onPath('ninja', env) && !onPath('make', env)) {
    missing.push({ tool: 'ninja', pkg: 'ninja-build', why: 'runs the compile steps' });
  }
  if (env.CANGEN_FAISS === 'system') {
    if (!existsSync('/usr/include/faiss/Index.h')) missing.push({ tool: 'faiss', pkg: 'libfaiss-dev', why: 'CANGEN_FAISS=system links an installed FAISS' });
  }
  if (!findOpenBlas(blasDirs)) {
    missing.push({ tool: 'openblas', pkg: 'libopenblas-dev', why: 'BLAS and LAPACK for FAISS (linked statically into the addon)' });
  }
  return missing;
}

/** Why FAISS's source cannot be fetched here, or null when it can (or is not needed). */
export function faissSourceProblem(env = process.env) {
  if (env.CANGEN_FAISS === 'system' || env.CANGEN_FAISS_SOURCE_DIR || faissCached(env)) return null;
  if (!onPath('apt-get', env)) {
    return 'FAISS is built from Debian\'s source package, fetched with apt-get, which this machine lacks: ' +
      'set CANGEN_FAISS_SOURCE_DIR to a FAISS 1.7.x source tree (github.com/facebookresearch/faiss, tag v1.7.3)';
  }
  return null;
}

/** True when `root` is a git checkout of cangen itself, not a copy inside someone's node_modules. */
export function isDevelopmentCheckout(root) {
  return existsSync(join(root, '.git')) && !root.split(sep).includes('node_modules');
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function hasPasswordlessSudo(env) {
  return onPath('sudo', env) && run('sudo', ['-n', 'true'], env)?.status === 0;
}

function isDebianLike() {
  try {
    const release = readFileSync('/etc/os-release', 'utf8');
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(release);
  } catch {
    return false;
  }
}

const installCommand = (pkgs, sudo) =>
  `${sudo ? 'sudo ' : ''}apt-get update && ${sudo ? 'sudo ' : ''}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;

/**
 * Makes sure a source build can start: returns normally when everything is there (after
 * installing what was missing, when allowed), or prints what to do and returns false.
 * `mayInstall`: whether this build may install system packages (a development checkout).
 */
export function ensurePrerequisites({ root, mayInstall, env = process.env, log = console.log, warn = console.error }) {
  let missing = missingPrerequisites({ env });
  const sourceProblem = faissSourceProblem(env);
  if (missing.length === 0 && !sourceProblem) return true;
  if (missing.length > 0) {
    const pkgs = missing.map((m) => m.pkg);
    const list = missing.map((m) => `  ${m.pkg}: ${m.why}`).join('\n');
    const canApt = onPath('apt-get', env) && isDebianLike();
    const sudo = !isRoot();
    const allowed = mayInstall && env.CANGEN_SYSTEM_PACKAGES !== 'never' && canApt && (!sudo || hasPasswordlessSudo(env));
    if (!allowed) {
      const why = !mayInstall
        ? 'cangen installs system packages only when built in its own checkout'
        : env.CANGEN_SYSTEM_PACKAGES === 'never'
          ? 'CANGEN_SYSTEM_PACKAGES=never'
          : !canApt
            ? 'this is not a Debian or Ubuntu machine with apt-get'
            : 'not root, and sudo asks for a password';
      warn(`cangen: building the native addon from source needs packages this machine lacks:\n${list}\n` +
        `Not installing them (${why}). Run:\n\n    ${canApt ? installCommand(pkgs, sudo) : `install the equivalents of: ${pkgs.join(' ')}`}\n\n` +
        'then run the install again (npm ci, or npm rebuild cangen).');
      return false;
    }
    log(`cangen: building the native addon from source needs:\n${list}\n` +
      `cangen: installing them with apt-get${sudo ? ' (sudo)' : ''} (about a minute; set CANGEN_SYSTEM_PACKAGES=never to refuse)`);
    const prefix = sudo ? ['sudo', '-n'] : [];
    const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
      const full = [...prefix, ...args];
      // dpkg's progress (hundreds of lines) is kept back and shown only if the step fails.
      const step = spawnSync(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: aptEnv, encoding: 'utf8' });
      if (step.status !== 0) {
        warn(`${step.stdout ?? ''}${step.stderr ?? ''}`.split('\n').slice(-30).join('\n'));
        warn(`cangen: \`${full.join(' ')}\` failed (exit ${step.status ?? step.error?.message}); install the packages by hand:\n\n    ${installCommand(pkgs, sudo)}\n`);
        return false;
      }
    }
    missing = missingPrerequisites({ env });
    log(`cangen: installed ${pkgs.filter((p) => !missing.some((m) => m.pkg === p)).join(' ') || 'nothing'}`);
    if (missing.length > 0) {
      warn(`cangen: still missing after apt-get install: ${missing.map((m) => m.pkg).join(' ')}`);
      return false;
    }
  }
  if (sourceProblem) {
    warn(`cangen: ${sourceProblem}.`);
    return false;
  }
  return true;
}
