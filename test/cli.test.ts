import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const run = promisify(execFile);
const cli = suite('cangen command line');
const entry = join(__dirname, '..', 'lib', 'cli', 'index.ts');
const tsx = join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

cli('help, unknown commands and bad flags', async () => {
  const help = await run(process.execPath, [tsx, entry, 'help']);
  assert.match(help.stdout, /Usage: cangen <command>/);
  assert.match(help.stdout, /serve[\s\S]*simulate[\s\S]*bench/);
  await run(process.execPath, [tsx, entry, 'launch']).then(() => assert.unreachable(), (e: { code: number; stderr: string }) => {
    assert.is(e.code, 2);
    assert.match(e.stderr, /Unknown command 'launch'/);
  });
  await run(process.execPath, [tsx, entry, 'simulate', '--requests', 'many']).then(() => assert.unreachable(), (e: { stderr: string }) => {
    assert.match(e.stderr, /Expected a whole number for --requests but received 'many'/);
  });
  await run(process.execPath, [tsx, entry, 'simulate', '--model', 'everything']).then(() => assert.unreachable(), (e: { stderr: string }) => {
    assert.match(e.stderr, /Expected one of unified, browsing, engagement, click, conversion for --model but received 'everything'/);
  });
});

cli('simulate prints the learned-vs-static table', async () => {
  const args = ['simulate', '--requests', '200', '--ads', '2000', '--users', '100', '--no-sequence'];
  const { stdout } = await run(process.execPath, [tsx, entry, ...args], { timeout: 60_000 });
  assert.match(stdout, /sequence generator: off \([0-9,]+ logged events \([0-9,]+ engagement, [0-9,]+ click, [0-9,]+ conversion\)\)/);
  assert.match(stdout, /share of k \(static -> learned\)/);
  assert.match(stdout, /home\s+25% -> \d+%/);
  assert.match(stdout, /clicks\s+[0-9.]+\s+[0-9.]+/);
  assert.match(stdout, /latency p50 \/ p99 \(ms\)/);
});

cli.run();
