/**
 * Learned state on disk. A write goes to a temporary file in the same folder, is flushed, and is
 * renamed over the old file, so a crash leaves the old state or the new one, never half of one.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { StateFileError } from './errors';

export async function writeStateFile(path: string, state: unknown): Promise<void> {
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await mkdir(folder, { recursive: true });
    const file = await open(temp, 'w');
    try {
      await file.writeFile(JSON.stringify({ format: 'cangen-state', version: 1, savedAt: new Date().toISOString(), state }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    const dir = await open(folder, 'r');
    await dir.sync().catch(() => undefined); // not every filesystem syncs folders
    await dir.close();
  } catch (error) {
    await rm(temp, { force: true });
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
