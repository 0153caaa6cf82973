/**
 * hnswlib-node, compiled on first use. `npm ci` does not run its install script (package.json
 * `allowScripts` says false): node-gyp needs python3, make and a compiler, which a fresh machine
 * lacks, and only the benchmarks use this peer. The first benchmark that needs it builds it here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

type HnswlibModule = typeof import('hnswlib-node');
let loaded: HnswlibModule | undefined;

/** npm's bundled node-gyp, next to the npm that runs us (or on PATH). */
function nodeGyp(): string[] {
  const npmCli = process.env.npm_execpath ?? join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  const bundled = join(dirname(realpathSync(npmCli)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? [process.execPath, bundled] : ['node-gyp'];
}

export function loadHnswlib(): HnswlibModule {
  if (loaded) return loaded;
  try {
    loaded = require('hnswlib-node') as HnswlibModule;
    return loaded;
  } catch {
    // Not built yet: build it below.
  }
  const dir = dirname(require.resolve('hnswlib-node/package.json'));
  const [command, ...args] = nodeGyp();
  const headers = join(dirname(process.execPath), '..');
  const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(headers, 'include', 'node', 'node.h')) ? headers : undefined);
  process.stderr.write(`building hnswlib-node (a benchmark peer) with node-gyp in ${dir}\n`);
  const build = spawnSync(command!, [...args, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) {
    throw new Error(`Could not build hnswlib-node (node-gyp exit ${build.status ?? build.error?.message}): it needs python3, make and g++ ` +
      '(apt-get install python3 make g++). Or leave it out with --engines / --kinds.');
  }
  loaded = require('hnswlib-node') as HnswlibModule;
  return loaded;
}
