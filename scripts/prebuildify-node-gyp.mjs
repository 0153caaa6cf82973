#!/usr/bin/env node
// prebuildify runs "node-gyp rebuild ..." to make a binary; this stands in for node-gyp and
// builds with CMake instead, leaving build/Release/cangen.node where prebuildify picks it up.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const build = spawnSync(process.execPath, [join(here, 'build-native.mjs')], { stdio: 'inherit' });
process.exit(build.status ?? 1);
