#!/usr/bin/env node
// The test command: runs every test file with uvu (TypeScript through tsx), then prints the
// plain summary line CI reads: "N passed, N failed, N skipped".
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const uvu = join(root, 'node_modules', 'uvu', 'bin.js');
const pattern = process.argv[2];
// test/native holds the C++ tests (scripts/native-tests.sh): a pattern must not pick them up.
const args = [uvu, '-r', 'tsx', 'test', ...(pattern ? [pattern] : []), '-i', 'helpers', '-i', '\\.cc$'];

const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
child.stdout.on('data', (chunk) => {
  output += chunk;
  process.stdout.write(chunk);
});
child.on('close', (code) => {
  // eslint-disable-next-line no-control-regex
  const plain = output.replace(/\u001b\[[0-9;]*m/g, '');
  const count = (label) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
  const total = count('Total');
  const passed = count('Passed');
  const skipped = count('Skipped');
  // uvu stops a file at its first failing suite, so count what did not pass as failed.
  const failed = code === 0 ? total - passed : Math.max(total - passed, 1);
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
