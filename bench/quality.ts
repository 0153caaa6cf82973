/**
 * Retrieval quality of the trained user models on public data, beside the published anchors.
 *
 *   npx tsx bench/quality.ts [--only NAME[,NAME]] [--group headline|ablation|all] [--retrain] [--serve]
 *                            [--max-minutes N] [--threads N] [--data-root DIR] [--models DIR] [--out DIR] [--record]
 *
 * Each run trains with the Python trainer (train/, through the same launcher as `cangen train`)
 * into models/quality-<name>/ under its time box, resuming an interrupted run from its checkpoint;
 * a run whose directory already holds results.json is reused unless --retrain. Data comes from
 * --data-root (default $CANGEN_DATA, else ../shared/data): never copied into the repository.
 * Prints the table and writes quality-<name>.json per run (config, seed, epochs, wall time, machine,
 * protocol, anchors) to results/, or with --record to bench/results/. With --serve, each model is also
 * evaluated through cangen's serving path (bench/quality-serve.ts: SequenceEncoder + exact and HNSW
 * indexes) beside the trainer's own evaluation of the same users, into quality-serve-<name>.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runTrain } from '../lib/cli/train';
import { resultsDir } from './flags';
import { machineInfo } from './machine';
import { dataFlags, serveQuality, serveTable } from './quality-serve';

interface Anchor { name: string; hr10: number; ndcg10: number; source: string }
interface Run { name: string; group: 'headline' | 'ablation'; dataset: string; protocol: 'gr' | 's3rec'; minutes: number; args: string[] }

const beauty = ['--data', 'amazon/Beauty.txt'];
const beautyFeatures = ['--item-features', 'amazon/beauty-text/Beauty_item2attributes.json'];
/** Shared settings found on Beauty in short trials (docs/TRAINING.md, "Choosing the settings"). */
const amazon = ['--max-len', '50', '--dim', '64', '--layers', '2', '--dropout', '0.2', '--temperature', '0.2',
  '--negatives', '512', '--in-batch-negatives', '256', '--warmup-steps', '50', '--val-users', '4000', '--protocol', 's3rec'];
const ablation = [...beauty, ...amazon];

const runs: Run[] = [
  { name: 'beauty-hstu', group: 'headline', dataset: 'Beauty', protocol: 's3rec', minutes: 20,
    args: [...beauty, ...beautyFeatures, ...amazon, '--model', 'hstu', '--long-term'] },
  { name: 'ml1m-hstu', group: 'headline', dataset: 'ML-1M', protocol: 'gr', minutes: 20,
    args: ['--data', 'ml-1m/sequences.txt', '--item-features', 'ml-1m/movies.dat', '--model', 'hstu', '--long-term', '--max-len', '200',
      '--dim', '64', '--layers', '2', '--dropout', '0.2', '--temperature', '0.2', '--negatives', '128', '--in-batch-negatives', '128',
      '--warmup-steps', '50', '--batch-size', '32', '--lr', '0.002', '--protocol', 'gr'] },
  { name: 'sports-hstu', group: 'headline', dataset: 'Sports', protocol: 's3rec', minutes: 15,
    args: ['--data', 'amazon/Sports_and_Outdoors.txt', ...amazon, '--model', 'hstu', '--long-term'] },
  { name: 'beauty-ablation-sasrec', group: 'ablation', dataset: 'Beauty', protocol: 's3rec', minutes: 6, args: [...ablation, '--model', 'sasrec'] },
  { name: 'beauty-ablation-hstu', group: 'ablation', dataset: 'Beauty', protocol: 's3rec', minutes: 6, args: [...ablation, '--model', 'hstu'] },
  { name: 'beauty-ablation-hstu-mol', group: 'ablation', dataset: 'Beauty', protocol: 's3rec', minutes: 6,
    // MoL scores every (position, negative) pair through its gating network: a smaller mixture and
    // fewer negatives keep an epoch inside the box (about 13 min an epoch with 4x4 components, 768 negatives).
    args: [...ablation, '--model', 'hstu', '--head', 'mol', '--negatives', '128', '--in-batch-negatives', '128', '--val-users', '1000',
      '--mol', '{"queryComponents": 2, "itemComponents": 2, "componentDim": 32, "gatingWidth": 16, "temperature": 0.2}'] },
  { name: 'beauty-ablation-hstu-long', group: 'ablation', dataset: 'Beauty', protocol: 's3rec', minutes: 6,
    args: [...ablation, '--model', 'hstu', '--long-term', '--short-window', '10'] },
  { name: 'beauty-ablation-hstu-side', group: 'ablation', dataset: 'Beauty', protocol: 's3rec', minutes: 6,
    args: [...ablation, ...beautyFeatures, '--model', 'hstu'] },
];

const anchors: Record<string, Anchor[]> = {
  Beauty: [
    { name: 'ICLRec', hr10: 0.0744, ndcg10: 0.0403, source: 'salesforce/ICLRec README' },
    { name: 'BSARec', hr10: 0.1008, ndcg10: 0.0611, source: 'yehjin-shin/BSARec src/output/BSARec_Beauty_best.log' },
  ],
  Sports: [{ name: 'ICLRec', hr10: 0.0437, ndcg10: 0.0238, source: 'salesforce/ICLRec README' }],
  'ML-1M': [
    { name: 'SASRec', hr10: 0.2853, ndcg10: 0.1603, source: 'facebookresearch/generative-recommenders README' },
    { name: 'HSTU', hr10: 0.3097, ndcg10: 0.1720, source: 'facebookresearch/generative-recommenders README' },
    { name: 'HSTU-large', hr10: 0.3294, ndcg10: 0.1893, source: 'facebookresearch/generative-recommenders README' },
  ],
};
const protocols = {
  s3rec: 'leave-one-out, full ranking of all items; scores of every item in the user\'s history set to 0 (not removed), padding item ranked '
    + 'with score 0; input = last 50 events; ties against the target (ICLRec/BSARec trainers.py)',
  gr: 'leave-one-out, full ranking of all items; items of the input window removed; input = last 200 events; ties against the target '
    + '(generative-recommenders eval.py, filter_invalid_ids)',
};

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = resolve(__dirname, '..');
const dataRoot = resolve(flag('--data-root') ?? process.env.CANGEN_DATA ?? join(root, '..', 'shared', 'data'));
const modelsDir = resolve(flag('--models') ?? join(root, 'models'));
const outDir = resolve(flag('--out') ?? resultsDir(args.includes('--record')));
const only = flag('--only')?.split(',');
const group = flag('--group') ?? 'all';
const minutes = flag('--max-minutes');
const threads = flag('--threads');

function withDataRoot(runArgs: string[]): string[] {
  return runArgs.map((a, i) => (['--data', '--item-features'].includes(runArgs[i - 1] ?? '') ? join(dataRoot, a) : a));
}

type Metrics = Record<string, number>;
interface Results { test: Record<string, Metrics>; epochs: number; bestEpoch: number; stoppedBy: string; trainSeconds: number;
  secondsPerEpoch: number | null; peakMemoryMiB: number; config: { seed: number }; machine: unknown; machineAtStart?: unknown }

async function main(): Promise<void> {
  const selected = runs.filter((r) => (only ? only.includes(r.name) : group === 'all' || r.group === group));
  if (selected.length === 0) throw new Error(`Expected run names among ${runs.map((r) => r.name).join(', ')} for --only`);
  if (!existsSync(dataRoot)) throw new Error(`No data at ${dataRoot}: pass --data-root DIR or set CANGEN_DATA (see docs/TRAINING.md)`);
  mkdirSync(outDir, { recursive: true });
  const rows: string[] = [];
  const serveTables: string[] = [];
  for (const run of selected) {
    const dir = join(modelsDir, `quality-${run.name}`);
    const box = minutes ?? String(run.minutes);
    const command = [...withDataRoot(run.args), '--max-minutes', box, '--out', dir, '--resume', ...(threads ? ['--threads', threads] : [])];
    if (args.includes('--retrain') || !existsSync(join(dir, 'results.json'))) {
      process.stderr.write(`\n== ${run.name}: cangen train ${command.join(' ')}\n`);
      const started = Date.now();
      const code = await runTrain(command);
      if (code !== 0) throw new Error(`training ${run.name} failed with exit status ${code}`);
      process.stderr.write(`== ${run.name}: ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
    }
    const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
    const test = results.test[run.protocol]!;
    const record = {
      run: run.name, group: run.group, dataset: run.dataset, protocol: run.protocol, protocolText: protocols[run.protocol],
      timeBoxMinutes: Number(box), command: `cangen train ${run.args.join(' ')} --max-minutes ${box}`, seed: results.config.seed,
      anchors: anchors[run.dataset], test, testAllProtocols: results.test, results,
      note: 'CPU run on a 2-core machine shared with other jobs (see results.machine.loadAverage): wall times are upper bounds',
    };
    writeFileSync(join(outDir, `quality-${run.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
    const vs = (anchors[run.dataset] ?? []).map((a) => `${a.name} ${(test['hr@10']! / a.hr10).toFixed(2)}x/${(test['ndcg@10']! / a.ndcg10).toFixed(2)}x`);
    if (args.includes('--serve')) {
      const quality = await serveQuality(dir, dataFlags(run.args, dataRoot), { threads: Number(threads ?? 0) });
      const table = serveTable(run.name, quality);
      serveTables.push(table);
      writeFileSync(join(outDir, `quality-serve-${run.name}.json`), `${JSON.stringify({
        run: run.name, dataset: run.dataset, date: new Date().toISOString(), machine: machineInfo(), model: dir, ...quality,
        goals: { exactWithin: 0.002, annRelativeHrLossBelow: 0.01 },
      }, null, 2)}\n`);
    }
    rows.push([run.name.padEnd(28), run.protocol.padEnd(6), ...['hr@10', 'ndcg@10', 'hr@50', 'ndcg@50', 'hr@200', 'ndcg@200']
      .map((k) => test[k]!.toFixed(4).padStart(8)), String(results.epochs).padStart(6), String(results.secondsPerEpoch ?? '-').padStart(8),
    String(Math.round(results.peakMemoryMiB)).padStart(7), `  ${results.stoppedBy}; vs ${vs.join(', ')}`].join(' '));
  }
  console.log(`\n${'run'.padEnd(28)} ${'proto'.padEnd(6)}    HR@10  NDCG@10    HR@50  NDCG@50   HR@200 NDCG@200 epochs    s/ep  MiB`);
  for (const row of rows) console.log(row);
  for (const table of serveTables) console.log(`\nthrough cangen's serving path (goal: exact within 0.002 of torch; ANN HR@10 loss < 1%):\n${table}`);
  console.log('\nanchors (HR@10 / NDCG@10):');
  for (const [dataset, list] of Object.entries(anchors)) {
    console.log(`  ${dataset}: ${list.map((a) => `${a.name} ${a.hr10} / ${a.ndcg10} (${a.source})`).join('; ')}`);
  }
}

main().catch((error: Error) => {
  console.error(`bench:quality: ${error.message}`);
  process.exitCode = 1;
});
