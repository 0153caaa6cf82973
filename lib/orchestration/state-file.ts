/**
 * Learned state on disk. A write goes to a temporary file in the same folder, is flushed, and is
 * renamed over the old file, so a crash leaves the old state or the new one, never half of one.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../atomic-file';
import { StateFileError } from './errors';

export async function writeStateFile(path: string, state: unknown): Promise<void> {
  try {
    await writeFileAtomically(path, [JSON.stringify({ format: 'cangen-state', version: 1, savedAt: new Date().toISOString(), state })]);
  } catch (error) {
    throw new StateFileError(`Could not write state file ${path}: ${(error as Error).message}`);
  }
}

/** The saved state, or undefined when there is no file yet. */
export async function readStateFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFileError(`Could not read state file ${path}: ${(error as Error).message}`);
  }
  let parsed: { format?: unknown; version?: unknown; state?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new StateFileError(`Expected JSON in state file ${path} but received ${JSON.stringify(text.slice(0, 40))}`);
  }
  if (parsed?.format !== 'cangen-state' || parsed.version !== 1) {
    throw new StateFileError(`Expected a cangen state file (format 'cangen-state', version 1) at ${path} but received another file`);
  }
  return parsed.state;
}
