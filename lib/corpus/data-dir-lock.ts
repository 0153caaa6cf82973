/**
 * One corpus process per data dir: two writers would each apply only their own writes to their
 * indexes. A lock file holds the owner's pid; a lock left by a process that no longer runs (a
 * killed one) is taken over.
 */
import { openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { CorpusError } from './errors';

export interface DataDirLock {
  release(): void;
}

export function takeLock(dataDir: string): DataDirLock {
  const path = join(dataDir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let held = true;
      return {
        release: () => {
          if (held) rmSync(path, { force: true });
          held = false;
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CorpusError('ERR_CATALOG', `Could not lock the data dir ${dataDir}: ${(error as Error).message}`);
      }
      const owner = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new CorpusError('ERR_CATALOG', `The data dir ${dataDir} is in use by process ${owner}: one corpus process per data dir (stop it, or use another dataDir)`);
      }
      if (owner === process.pid) {
        throw new CorpusError('ERR_CATALOG', `The data dir ${dataDir} is already open in this process: close the other corpus (engine.close()) first`);
      }
      rmSync(path, { force: true }); // left by a process that died
    }
  }
  throw new CorpusError('ERR_CATALOG', `Could not lock the data dir ${dataDir}: another process keeps taking it`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
