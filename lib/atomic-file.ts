/** Files that survive a crash whole: written aside, flushed, renamed into place. */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `chunks` to `path` through a temporary file in the same folder (written, fsynced, renamed
 * over `path`, folder fsynced): a crash leaves the old file or the new one. Rejects with the file
 * system's error, the temporary file removed.
 */
export async function writeFileAtomically(path: string, chunks: readonly (string | Uint8Array)[]): Promise<void> {
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await mkdir(folder, { recursive: true });
    const file = await open(temp, 'w');
    try {
      // writeFile writes all of a chunk (looping over short writes) from the current position.
      for (const chunk of chunks) await file.writeFile(chunk);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    await syncPath(folder).catch(() => undefined); // not every filesystem syncs folders
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Flushes a file or a folder (a folder's entries: a rename into it) to the disk. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
