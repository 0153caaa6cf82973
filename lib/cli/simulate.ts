/** `cangen simulate`: learned vs static quotas on the marketplace (with its own trained sequence model); table, JSON and SVG. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatReport, machine, quotasSvg, simulate } from '../simulator';
import { progressBar } from './progress';

export interface SimulateArgs {
  requests: number;
  ads: number;
  users: number;
  seed: number;
  out: string | undefined;
  /** Train (or reuse) the sequence generator's model (default true). */
  sequence?: boolean;
  /** Where the sequence model is kept and reused while the log matches (default: a temporary folder). */
  modelDir?: string;
}

export async function runSimulate(args: SimulateArgs, print: (line: string) => void = console.log): Promise<void> {
  const report = await simulate({
    requests: args.requests, ads: args.ads, users: args.users, seed: args.seed, sequence: args.sequence, modelDir: args.modelDir,
    onProgress: progressBar('simulating'), onStatus: print,
  });
  print(formatReport(report));
  if (!args.out) return;
  await mkdir(args.out, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const json = join(args.out, `simulate-${date}.json`);
  const svg = join(args.out, 'simulate-quotas.svg');
  await writeFile(json, `${JSON.stringify({ machine: machine(), ...report }, null, 2)}\n`);
  await writeFile(svg, quotasSvg(report));
  print(`\nwrote ${json} and ${svg}`);
}
