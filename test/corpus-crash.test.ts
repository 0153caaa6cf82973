/**
 * Crash safety of the durable corpus: a child process writes a deterministic stream of batches
 * (upserts, removes, campaign budgets) and snapshots, and is killed with SIGKILL at a random
 * moment, 20 times over one data dir. After each kill the corpus is reopened and compared with an
 * independent model of the acknowledged batches: every acknowledged batch is there, and the one
 * in flight is either wholly there or wholly absent. Then damaged and missing snapshots.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine } from '../lib/orchestration/engine';
import { batchOf, crashDim, CrashModel } from './helpers/crash-stream';
import { seededRandom } from '../lib/orchestration/random';

const crash = suite('durable corpus under SIGKILL');
const writer = join(__dirname, 'helpers', 'crash-writer.ts');

function open(dataDir: string, log?: (line: string) => void) {
  return CandidateEngine.open({ dim: crashDim, dataDir, log, scenarios: [{ name: 's', generators: ['two-tower'] }] });
}

/** Differences between the reopened corpus and the model (empty when they agree). */
async function differences(engine: CandidateEngine, model: CrashModel): Promise<string[]> {
  const out: string[] = [];
  const index = engine.corpus.behavioural;
  if (engine.store.size !== model.ads.size) out.push(`store holds ${engine.store.size} ads, model ${model.ads.size}`);
  if (index.size !== model.ads.size) out.push(`index holds ${index.size} ads, model ${model.ads.size}`);
  for (const [id, ad] of model.ads) {
    const held = engine.store.get(id);
    if (!held) {
      out.push(`ad ${id} missing`);
      continue;
    }
    if (held.advertiserId !== ad.advertiserId || held.category !== ad.category || held.campaignId !== ad.campaignId) out.push(`ad ${id} has attributes of another write`);
    const hit = (await index.search(ad.embedding, 1, { filter: { ids: [id] } })).row(0);
    const self = ad.embedding.reduce((s, v) => s + v * v, 0);
    if (hit.ids[0] !== id || Math.abs(hit.scores[0]! - self) > 1e-4 * Math.max(1, self)) out.push(`ad ${id} has another embedding in the index`);
  }
  const all = (await index.search(new Float32Array(crashDim).fill(1), Math.max(1, model.ads.size + 5))).row(0);
  for (const id of all.ids) if (!model.ads.has(id)) out.push(`ad ${id} is searchable but was removed or never acknowledged`);
  for (const [campaign, budget] of model.budgets) if (engine.store.campaignBudget(campaign) !== budget) out.push(`campaign ${campaign} budget ${engine.store.campaignBudget(campaign)}, model ${budget}`);
  // Eligibility in the index follows the budgets: exactly the ads whose campaign has money.
  const eligible = new Set(await index.eligibleIds({ budget: ['available', 'limited'] }));
  for (const [id, ad] of model.ads) {
    const funded = (model.budgets.get(ad.campaignId) ?? Infinity) > 0;
    if (eligible.has(id) !== funded) out.push(`ad ${id} is ${eligible.has(id) ? '' : 'in'}eligible in the index, model says ${funded ? '' : 'in'}eligible`);
  }
  return out;
}

/** Runs the writer from batch `start` and kills it `afterMs` after it is ready; returns the last acknowledged batch. */
function runAndKill(dataDir: string, start: number, afterMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dataDir, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = start - 1;
    let buffered = '';
    let errors = '';
    child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') setTimeout(() => child.kill('SIGKILL'), afterMs);
        const ack = /^ack (\d+)$/.exec(line);
        if (ack) last = Number(ack[1]);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last);
      else reject(new Error(`the writer exited with ${code} before it was killed: ${errors}`));
    });
  });
}

crash('20 kills at random moments: every acknowledged batch survives, the batch in flight is all or nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cangen-crash-'));
  const random = seededRandom(20261202);
  let model = new CrashModel();
  let inFlightKept = 0;
  try {
    for (let round = 0; round < 20; round++) {
      const last = await runAndKill(dir, model.applied, 40 + Math.floor(random() * 400));
      for (let n = model.applied; n <= last; n++) model.apply(batchOf(n));
      const engine = await open(dir);
      try {
        const without = await differences(engine, model);
        if (without.length > 0) {
          // The batch in flight may have been committed before the kill: then all of it.
          const withNext = model.clone();
          withNext.apply(batchOf(model.applied));
          const withDiff = await differences(engine, withNext);
          assert.equal(withDiff, [], `round ${round}: neither the acknowledged prefix (${without.slice(0, 3).join('; ')}) nor it plus the batch in flight matches`);
          model = withNext;
          inFlightKept++;
        }
      } finally {
        await engine.close();
      }
    }
    assert.ok(model.applied > 40, `the writer got through ${model.applied} batches`);
    console.log(`  ${model.applied} batches over 20 kills; the batch in flight was committed in ${inFlightKept} of them`);

    // A damaged newest snapshot: the previous one is used, and the log says why.
    const snapshots = join(dir, 'snapshots');
    const kept = (await readdir(snapshots)).filter((n) => /^\d{16}$/.test(n)).sort();
    assert.ok(kept.length >= 1, 'the writer left snapshots');
    const newest = join(snapshots, kept[kept.length - 1]!, 'behavioural.cgx');
    const bytes = await readFile(newest);
    for (let i = bytes.length >> 1; i < Math.min(bytes.length, (bytes.length >> 1) + 64); i++) bytes[i] = bytes[i]! ^ 0xff;
    await writeFile(newest, bytes);
    const lines: string[] = [];
    let engine = await open(dir, (line) => lines.push(line));
    assert.equal(await differences(engine, model), []);
    assert.ok(lines.some((l) => l.includes(`snapshot ${Number(kept[kept.length - 1])} passed over`)), lines.join('\n'));
    await engine.close();

    // No snapshot at all: a full rebuild from the catalog.
    await rm(snapshots, { recursive: true, force: true });
    lines.length = 0;
    engine = await open(dir, (line) => lines.push(line));
    assert.equal(await differences(engine, model), []);
    assert.ok(lines.some((l) => l.includes('rebuilding the indexes from the catalog')), lines.join('\n'));
    await engine.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

crash.run();
