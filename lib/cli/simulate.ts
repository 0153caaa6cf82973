/**
 * `cangen simulate`: learned vs static quotas on the marketplace (with its own trained sequence
 * model); table, JSON and SVG. With compareModels: the trained models against the untrained
 * generators, per scenario (table and JSON).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareModels, formatComparison, formatReport, machine, quotasSvg, simulate, type RunModelName } from '../simulator';
import { progressBar } from './progress';

export const simulatorModels: readonly RunModelName[] = ['unified', 'browsing', 'engagement', 'click', 'conversion'];

export interface SimulateArgs {
  requests: number;
  ads: number;
  users: number;
  seed: number;
  out: string | undefined;
  /** Train (or reuse) the sequence generator's model (default true). */
  sequence?: boolean;
  /** Which model (default 'unified'; see SimulationOptions.sequenceModel). */
  model?: RunModelName;
  /** Compare every trained model with the untrained generators, per scenario, instead of static vs learned. */
  compareModels?: boolean;
  /** Where the models are kept and reused while the log matches (default: a temporary folder). */
  modelDir?: string;
}

/** The model name of a --model flag, checked. */
export function simulatorModel(value: string | undefined): RunModelName | undefined {
  if (value === undefined || (simulatorModels as readonly string[]).includes(value)) return value as RunModelName | undefined;
  throw new Error(`Expected one of ${simulatorModels.join(', ')} for --model but received '${value}'`);
}

export async function runSimulate(args: SimulateArgs, print: (line: string) => void = console.log): Promise<void> {
  const common = { requests: args.requests, ads: args.ads, users: args.users, seed: args.seed, modelDir: args.modelDir, onProgress: progressBar('simulating'), onStatus: print };
  const date = new Date().toISOString().slice(0, 10);
  if (args.compareModels) {
    const comparison = await compareModels(common);
    print(formatComparison(comparison));
    if (!args.out) return;
    await mkdir(args.out, { recursive: true });
    const json = join(args.out, `simulate-unified-${date}.json`);
    await writeFile(json, `${JSON.stringify({ machine: machine(), ...comparison }, null, 2)}\n`);
    print(`\nwrote ${json}`);
    return;
  }
  const report = await simulate({ ...common, sequence: args.sequence, sequenceModel: args.model });
  print(formatReport(report));
  if (!args.out) return;
  await mkdir(args.out, { recursive: true });
  const json = join(args.out, `simulate-${date}.json`);
  const svg = join(args.out, 'simulate-quotas.svg');
  await writeFile(json, `${JSON.stringify({ machine: machine(), ...report }, null, 2)}\n`);
  await writeFile(svg, quotasSvg(report));
  print(`\nwrote ${json} and ${svg}`);
}
