/**
 * `cangen train`: a thin launcher for the Python trainer in train/ (PyTorch + NumPy). Flags pass
 * through unchanged (`cangen train --help` lists them); the trainer prints its own progress.
 * The interpreter is $CANGEN_PYTHON, else /usr/bin/python3 (Debian's python3-torch lives there),
 * else python3 on PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The folder holding the cangen_train package (train/ beside lib/ and dist/). */
export const trainPackageDir = join(__dirname, '..', '..', 'train');

export function pythonForTraining(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CANGEN_PYTHON) return env.CANGEN_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Why training cannot start with this interpreter, or undefined when torch and numpy import. */
export function missingTrainingDependencies(python: string): string | undefined {
  const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.error) return `cannot run '${python}' (${probe.error.message}); set CANGEN_PYTHON to a Python 3 with PyTorch and NumPy`;
  if (probe.status !== 0) {
    return `'${python}' cannot import PyTorch and NumPy: install them (Debian/Ubuntu: apt-get install python3-torch python3-numpy) ` +
      'or set CANGEN_PYTHON to a Python that has them';
  }
  return undefined;
}

/** Runs the trainer with `args`; resolves to its exit status (2 when it cannot start). */
export async function runTrain(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const python = pythonForTraining(env);
  const missing = missingTrainingDependencies(python);
  if (missing) {
    console.error(`cangen train: ${missing}`);
    return 2;
  }
  const pythonPath = [trainPackageDir, env.PYTHONPATH].filter(Boolean).join(':');
  const child = spawn(python, ['-m', 'cangen_train', ...args], { stdio: 'inherit', env: { ...env, PYTHONPATH: pythonPath } });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 2 : 1)));
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
