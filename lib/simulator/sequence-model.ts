/**
 * The simulator's own sequence model: its users' organic browsing (Marketplace.browse) is the
 * engagement log, cangen's trainer (train/, PyTorch) fits a small HSTU to it, and the simulated
 * engines serve the export through SequenceEncoder. The log is written in the trainer's
 * `sequences` format (one user a line, ad ids in time order) with the ads' category and
 * advertiser as item features (the JSON form of --item-features). A model directory whose
 * fingerprint (log, features, flags) matches is reused, so reruns skip training.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../errors';
import { missingTrainingDependencies, pythonForTraining, trainPackageDir } from '../cli/train';
import type { Random } from '../orchestration/random';
import type { Marketplace } from './world';

/** Small enough to train in seconds on one core; fixed seed. */
export const hstuFlags = [
  '--model', 'hstu', '--dim', '32', '--layers', '2', '--heads', '1', '--max-len', '20',
  '--epochs', '20', '--patience', '5', '--lr', '0.003', '--temperature', '0.2', '--batch-size', '64', '--negatives', '256', '--in-batch-negatives', '64',
  '--warmup-steps', '20', '--val-users', '500', '--threads', '1', '--drop-short',
];

/** Every user browses `pages` pages, in turns (all users' first page, then their second, ...): each user's clicked ad rows in time order. */
export function browsingLog(world: Marketplace, pages: number, random: Random): number[][] {
  const histories = Array.from({ length: world.nUsers }, (): number[] => []);
  for (let p = 0; p < pages; p++) for (let u = 0; u < world.nUsers; u++) histories[u]!.push(...world.browse(u, random));
  return histories;
}

/** The log in the trainer's `sequences` format: `u<n> <ad id> <ad id> ...` (ad id = row + 1); users with no click are left out. */
export function sequencesFile(histories: readonly (readonly number[])[]): string {
  return histories.map((rows, u) => (rows.length ? `u${u} ${rows.map((r) => r + 1).join(' ')}\n` : '')).join('');
}

/** Item side information as --item-features reads it: `{ "<ad id>": ["category:shoes", "advertiser:17"] }`. */
export function itemFeaturesFile(world: Marketplace): string {
  const features: Record<string, string[]> = {};
  for (let i = 0; i < world.nAds; i++) features[String(i + 1)] = [`category:${world.categories[world.adCategory[i]!]}`, `advertiser:${world.adAdvertiser[i]}`];
  return JSON.stringify(features);
}

export interface SequenceModelOptions {
  /** Where the log, the features and the model (dir/model) are written; reused when they match. */
  dir: string;
  seed: number;
  /** Progress lines (the trainer's epoch summaries). */
  log?: (line: string) => void;
}

export type SequenceModel =
  | { status: 'trained' | 'reused'; modelDir: string; seconds: number }
  | { status: 'skipped'; reason: string };

/** Trains (or reuses) the HSTU on `histories`; skipped, with the reason, when PyTorch is missing. */
export async function simulatorSequenceModel(world: Marketplace, histories: readonly (readonly number[])[], options: SequenceModelOptions): Promise<SequenceModel> {
  return trainCached({ 'log.txt': sequencesFile(histories), 'items.json': itemFeaturesFile(world) }, (file) => [
    '--data', file('log.txt'), '--item-features', file('items.json'), '--format', 'sequences', ...hstuFlags, '--seed', String(options.seed),
  ], options);
}

/**
 * Trains `args(file)` on `files` (name -> content, written into options.dir; `file(name)` is a
 * written file's path) into options.dir/model, or reuses the model there when the files and the
 * arguments are those it was trained on (the fingerprint); skipped when PyTorch is missing.
 */
export async function trainCached(
  files: Record<string, string>, args: (file: (name: string) => string) => string[], options: SequenceModelOptions,
): Promise<SequenceModel> {
  const started = performance.now();
  const file = (name: string) => join(options.dir, name);
  const flags = args(file);
  const hash = createHash('sha256');
  for (const [name, content] of Object.entries(files)) hash.update(name).update('\0').update(content).update('\0');
  const fingerprint = hash.update(flags.join(' ')).digest('hex');
  const modelDir = join(options.dir, 'model');
  const fingerprintFile = join(options.dir, 'fingerprint.txt');
  if (existsSync(join(modelDir, 'config.json')) && existsSync(fingerprintFile) && readFileSync(fingerprintFile, 'utf8').trim() === fingerprint) {
    return { status: 'reused', modelDir, seconds: (performance.now() - started) / 1000 };
  }
  const python = pythonForTraining();
  const missing = missingTrainingDependencies(python);
  if (missing) return { status: 'skipped', reason: missing };

  await mkdir(options.dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(file(name), content);
  await writeFile(fingerprintFile, ''); // a model from an interrupted run never matches
  await runTrainer(python, ['-m', 'cangen_train', '--out', modelDir, ...flags], options.log);
  await writeFile(fingerprintFile, `${fingerprint}\n`);
  return { status: 'trained', modelDir, seconds: (performance.now() - started) / 1000 };
}

async function runTrainer(python: string, args: string[], log?: (line: string) => void): Promise<void> {
  const env = { ...process.env, PYTHONPATH: [trainPackageDir, process.env.PYTHONPATH].filter(Boolean).join(':') };
  const child = spawn(python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const take = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-4000);
    for (const line of text.split(/[\r\n]+/)) if (/^(epoch \d+:|test |stopped)/.test(line)) log?.(line.trim());
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new InternalError(`The trainer failed on the simulator's log (exit ${code}): ${output.trim().split('\n').slice(-5).join(' | ')}`);
}
