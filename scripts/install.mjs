#!/usr/bin/env node
// npm install hook: use a prebuilt binary when one loads on this machine, otherwise build from
// source. CANGEN_BUILD_FROM_SOURCE=1 always builds.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (process.env.CANGEN_BUILD_FROM_SOURCE !== '1') {
  try {
    const binary = require('node-gyp-build').path(root);
    require(binary);
    console.log(`cangen: using ${binary}`);
    process.exit(0);
  } catch (error) {
    console.log(`cangen: no usable prebuilt binary (${error.message.split('\n')[0]}); building from source`);
  }
}
if (process.env.CANGEN_CONSUMER_NO_BUILD === '1') {
  console.error('cangen: CANGEN_CONSUMER_NO_BUILD is set and no prebuilt binary loaded');
  process.exit(1);
}
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
process.exit(build.status ?? 1);
