/**
 * A multi-task model trained by the trainer (three labels, a head per label and scenario, the
 * scenario in the input tokens, gated towers, ESMM) served by cangen: SequenceEncoder encodes the
 * shared user state and the export's scorer/ (LearnedScorer, kind dot with one projection per head)
 * blends the heads by scenario. Both must give PyTorch's float64 scores to 1e-4. Skipped, with a
 * line saying why, where PyTorch is not installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LearnedScorer, SequenceEncoder } from '../lib';
import { missingTrainingDependencies, pythonForTraining, trainPackageDir } from '../lib/cli/train';
import { maxRelativeError } from './helpers/sequence-random';

interface Expected {
  users: { items: number[]; actions: number[]; times: number[] }[];
  tokens: string[];
  heads: string[];
  scenarios: Record<string, Record<string, number>>;
  numItems: number;
  dim: number;
  scores: Record<string, number[]>;
  queries: number[];
}

const python = pythonForTraining();
const missing = missingTrainingDependencies(python);
const parity = suite('multi-task export served by SequenceEncoder + LearnedScorer');
const test = missing ? parity.skip : parity;
if (missing) console.log(`skipped: ${missing}`);

let work = '';
let expected: Expected;
parity.before(() => {
  if (missing) return;
  work = mkdtempSync(join(os.tmpdir(), 'cangen-multitask-'));
  const made = spawnSync(python, [join(__dirname, 'helpers', 'multitask_parity.py'), work], {
    cwd: trainPackageDir, encoding: 'utf8', timeout: 300_000, env: { ...process.env, PYTHONPATH: trainPackageDir },
  });
  assert.is(made.status, 0, `${made.stdout}\n${made.stderr}`);
  expected = JSON.parse(readFileSync(join(work, 'expected.json'), 'utf8')) as Expected;
});
parity.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('every scenario blend scores every item as PyTorch does, to 1e-4', async () => {
  const dir = join(work, 'model');
  const encoder = await SequenceEncoder.load(dir);
  const scorer = await LearnedScorer.load(join(dir, 'scorer'));
  try {
    assert.equal(scorer.heads, expected.heads);
    assert.equal([...scorer.scenarios].sort(), Object.keys(expected.scenarios).sort());
    assert.equal(Array.from(encoder.actionRows(expected.tokens)), expected.tokens.map((_, i) => i + 1));
    const { users } = expected;
    const offsets = new Uint32Array(users.length + 1);
    users.forEach((u, i) => (offsets[i + 1] = offsets[i]! + u.items.length));
    const queries = await encoder.encode({
      items: Int32Array.from(users.flatMap((u) => u.items)),
      actions: Int32Array.from(users.flatMap((u) => u.actions)),
      times: Float64Array.from(users.flatMap((u) => u.times)),
      offsets,
    });
    assert.ok(maxRelativeError(queries, expected.queries, expected.dim) <= 1e-4, 'shared user state differs from PyTorch');
    // The scorer holds the model's (normalised) item embeddings, ids 1..N = rows 1..N.
    const table = encoder.itemEmbeddings();
    const n = expected.numItems;
    await scorer.add(BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)), table.subarray(expected.dim, (n + 1) * expected.dim));
    for (const scenario of Object.keys(expected.scenarios)) {
      const got = await scorer.score(queries, undefined, { scenario });
      const error = maxRelativeError(got, expected.scores[scenario]!, n);
      console.log(`  ${scenario}: max relative error ${error.toExponential(2)} vs PyTorch float64`);
      assert.ok(error <= 1e-4, `${scenario}: max relative error ${error}`);
    }
    // A per-request blend of one head equals that head alone: search picks the same top item.
    const head = expected.heads[4]!;
    const top = await scorer.search(queries, 1, { weights: { [head]: 1 } });
    const alone = await scorer.score(queries, undefined, { weights: { [head]: 1 } });
    for (let u = 0; u < users.length; u++) {
      const row = alone.subarray(u * n, (u + 1) * n);
      assert.is(Number(top.ids[u]), row.indexOf(Math.max(...row)) + 1);
    }
  } finally {
    encoder.close();
    scorer.close();
  }
});

parity.run();
