/**
 * The PyTorch trainer (train/): its Python unit tests, the `cangen train` launcher, and the
 * export contract with the engine: cangen's LearnedScorer loads a trained model's MoL head and
 * scores exactly as PyTorch does. Skipped (with a line saying why) where PyTorch is not installed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LearnedScorer } from '../lib';
import { missingTrainingDependencies, pythonForTraining, trainPackageDir } from '../lib/cli/train';

const run = promisify(execFile);
const python = pythonForTraining();
const missing = missingTrainingDependencies(python);
const trainer = suite('PyTorch trainer');
const test = missing ? trainer.skip : trainer;
if (missing) console.log(`skipped: ${missing}`);
const entry = join(__dirname, '..', 'lib', 'cli', 'index.ts');
const tsx = join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

test('Python unit tests (readers, split, metrics, HSTU reference, planted pattern, export)', () => {
  const result = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], {
    cwd: trainPackageDir, encoding: 'utf8', timeout: 300_000,
  });
  const tail = `${result.stdout}\n${result.stderr}`.split('\n').slice(-40).join('\n');
  assert.is(result.status, 0, `python unittest failed:\n${tail}`);
  assert.match(result.stderr, /Ran \d+ tests/);
});

test('LearnedScorer loads the exported MoL head and scores like PyTorch', async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'cangen-train-export-'));
  try {
    let log = 'user,item,timestamp,action\n';
    for (let u = 0; u < 6; u++) for (let k = 0; k < 9; k++) log += `u${u},i${(u * 7 + k) % 13},${k * 60 + u},${k % 3 ? 'view' : 'buy'}\n`;
    writeFileSync(join(dir, 'log.csv'), log);
    const script = 'import sys; from tests.test_export import write_scorer_fixture; write_scorer_fixture(sys.argv[1])';
    const made = spawnSync(python, ['-c', script, dir], { cwd: trainPackageDir, encoding: 'utf8' });
    assert.is(made.status, 0, made.stderr);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
      users: number[]; items: number[]; scores: number[]; numItems: number; dim: number;
    };
    const scorer = await LearnedScorer.load(join(dir, 'model', 'scorer'));
    try {
      const ids = BigInt64Array.from({ length: expected.numItems }, (_, i) => BigInt(i + 1));
      await scorer.add(ids, Float32Array.from(expected.items));
      const got = await scorer.score(Float32Array.from(expected.users));
      assert.is(got.length, expected.scores.length);
      for (let i = 0; i < got.length; i++) {
        const want = expected.scores[i]!;
        assert.ok(Math.abs(got[i]! - want) <= 1e-4 * Math.max(1, Math.abs(want)), `score ${i}: cangen ${got[i]} vs PyTorch ${want}`);
      }
    } finally {
      scorer.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cangen train: bad inputs exit 2 with the trainer error code', async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'cangen-train-cli-'));
  try {
    writeFileSync(join(dir, 'empty.txt'), '');
    const fail = async (args: string[]): Promise<{ code: number; stderr: string }> => {
      try {
        await run(process.execPath, [tsx, entry, 'train', ...args], { timeout: 60_000 });
      } catch (error) {
        return error as { code: number; stderr: string };
      }
      throw new Error(`cangen train ${args.join(' ')} succeeded; expected a failure`);
    };
    const empty = await fail(['--data', join(dir, 'empty.txt'), '--out', join(dir, 'out')]);
    assert.is(empty.code, 2);
    assert.match(empty.stderr, /ERR_DATA_FORMAT: .*empty\.txt: no events \(empty file\)/);
    const kind = await fail(['--data', join(dir, 'empty.txt'), '--out', join(dir, 'out'), '--model', 'gru4rec']);
    assert.match(kind.stderr, /ERR_TRAIN_CONFIG: Expected one of hstu, sasrec for model but received 'gru4rec'/);
    const help = await run(process.execPath, [tsx, entry, 'train', '--help']);
    assert.match(help.stdout, /--max-minutes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

trainer.run();
