/**
 * Snapshots of the derived indexes: a folder per snapshot, named by the catalog sequence it
 * includes, holding one index file per corpus and a manifest written last. A snapshot is written
 * into a temporary folder and renamed into place, so a folder with a manifest is complete; a file
 * damaged later fails its checksum on load and the next older snapshot is tried.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncPath } from '../atomic-file';
import { AdIndex, type AdIndexOptions } from '../ad-index';

interface Manifest {
  format: 'cangen-snapshot';
  version: 1;
  seq: number;
  createdAt: string;
  indexes: string[];
}

export interface LoadedSnapshot {
  seq: number;
  createdAt: Date;
  indexes: Map<string, AdIndex>;
}

/** What a loaded index must match to be used: the corpus's current settings. */
export type Expected = Pick<Required<AdIndexOptions>, 'dim' | 'metric' | 'kind' | 'precision'>;

const namePattern = /^\d{16}$/;

export class SnapshotStore {
  readonly dir: string;
  private readonly keep: number;

  constructor(dir: string, keep = 2) {
    this.dir = dir;
    this.keep = Math.max(1, keep);
  }

  /** Sequences of the complete snapshots on disk, newest first. */
  async list(): Promise<number[]> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => namePattern.test(n));
    return names.map(Number).sort((a, b) => b - a);
  }

  /** Writes a snapshot of `indexes` as of catalog sequence `seq`; returns the sequences still kept. */
  async save(seq: number, indexes: ReadonlyMap<string, AdIndex>): Promise<number[]> {
    await mkdir(this.dir, { recursive: true });
    const final = join(this.dir, folderName(seq));
    const temporary = join(this.dir, `.partial-${folderName(seq)}-${process.pid}`);
    await rm(temporary, { recursive: true, force: true });
    await mkdir(temporary);
    try {
      for (const [name, index] of indexes) await index.save(join(temporary, `${name}.cgx`));
      const manifest: Manifest = { format: 'cangen-snapshot', version: 1, seq, createdAt: new Date().toISOString(), indexes: [...indexes.keys()] };
      await writeFile(join(temporary, 'manifest.json'), JSON.stringify(manifest));
      await syncPath(join(temporary, 'manifest.json'));
      await syncPath(temporary);
      await rm(final, { recursive: true, force: true });
      await rename(temporary, final);
      await syncPath(this.dir);
    } catch (error) {
      await rm(temporary, { recursive: true, force: true });
      throw error;
    }
    const all = await this.list();
    for (const old of all.slice(this.keep)) await rm(join(this.dir, folderName(old)), { recursive: true, force: true });
    return all.slice(0, this.keep);
  }

  /**
   * The newest snapshot whose every index loads and matches `expected`; `log` hears why each newer
   * one was passed over. Undefined when none qualifies (the caller rebuilds from the catalog).
   */
  async loadNewest(expected: ReadonlyMap<string, Expected>, threads: number, log: (reason: string) => void): Promise<LoadedSnapshot | undefined> {
    for (const seq of await this.list()) {
      const folder = join(this.dir, folderName(seq));
      const loaded = new Map<string, AdIndex>();
      try {
        const manifest = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')) as Manifest;
        if (manifest.format !== 'cangen-snapshot' || manifest.seq !== seq) throw new Error('its manifest does not describe this snapshot');
        for (const [name, want] of expected) {
          const index = await AdIndex.load(join(folder, `${name}.cgx`), { threads });
          loaded.set(name, index);
          const o = (await index.stats()).options;
          if (o.dim !== want.dim || o.metric !== want.metric || o.kind !== want.kind || o.precision !== want.precision) {
            const shape = (x: Expected) => `${x.kind}/${x.metric}/dim ${x.dim}/${x.precision}`;
            throw new Error(`its ${name} index is ${shape(o)} but the corpus is configured as ${shape(want)}`);
          }
        }
        return { seq, createdAt: new Date(manifest.createdAt), indexes: loaded };
      } catch (error) {
        for (const index of loaded.values()) index.close();
        log(`snapshot ${seq} passed over: ${(error as Error).message}`);
      }
    }
    return undefined;
  }
}

function folderName(seq: number): string {
  return String(seq).padStart(16, '0');
}

/** fsync a file or folder, so a rename after it cannot expose unwritten data. */
