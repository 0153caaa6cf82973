/**
 * Snapshots of a shard's index in the cluster's JetStream object store, so that a replica that
 * starts or joins loads the newest one and replays only the log after it.
 *
 * An object is one AdIndex file (AdIndex.save) named `shard.<shard>.seq.<sequence>`; its metadata
 * is the manifest: the log sequence the index includes, kind, dim, metric, ads, size and the
 * SHA-256 of the file as written, computed before upload and checked after download (the object
 * store's own digest covers the transfer, ours covers everything between save and load). An object
 * becomes visible only once all its chunks are stored (the store writes its metadata last), so a
 * snapshot is atomic: a reader sees all of it or none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StorageType, type NatsConnection, type ObjectInfo, type ObjectStore } from 'nats';
import { AdIndex } from '../ad-index';
import { ClusterError } from './errors';
import type { ClusterNames } from './names';
import { isTransient } from './transient';

export const snapshotFormat = 1;

export interface SnapshotManifest {
  format: number;
  cluster: string;
  /** The shard; -1 (catalogSnapshotShard) for the routers' catalog, whose `sequence` is a catalog sequence and `kind` 'catalog'. */
  shard: number;
  /** The last log sequence of the shard the index includes: replay starts after it. */
  sequence: number;
  kind: string;
  dim: number;
  metric: string;
  ads: number;
  bytes: number;
  /** SHA-256 (hex) of the index file as saved. */
  sha256: string;
  /** When the snapshot was taken (ISO 8601, the taker's clock). */
  createdAt: string;
  replicaId: string;
}

export interface SnapshotEntry {
  name: string;
  /** Absent when the object's metadata is not a cangen manifest: such an entry is never loaded. */
  manifest?: SnapshotManifest;
}

/** A snapshot file written locally, before upload. */
export interface SnapshotFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Whose snapshot an object is: a shard's index, or the pipeline routers' catalog (catalog-snapshots.ts; manifest shard -1). */
export type SnapshotOwner = number | 'catalog';

/** The manifest's `shard` of a catalog snapshot. */
export const catalogSnapshotShard = -1;

const ownerPrefix = (owner: SnapshotOwner) => (owner === 'catalog' ? 'catalog' : `shard.${owner}`);

export function snapshotName(owner: SnapshotOwner, sequence: number): string {
  return `${ownerPrefix(owner)}.seq.${String(sequence).padStart(16, '0')}`;
}

/** A local temporary path for a snapshot file (removed by whoever made it). */
export function snapshotTempPath(dir: string | undefined, cluster: string, shard: number): string {
  return join(dir ?? tmpdir(), `cangen-snapshot-${cluster}-${shard}-${randomBytes(6).toString('hex')}.idx`);
}

/** Saves `index` to `path` and hashes the file. */
export async function writeSnapshotFile(index: AdIndex, path: string): Promise<SnapshotFile> {
  await index.save(path);
  return hashedFile(path);
}

/** A file written for upload, with its size and SHA-256. */
export async function hashedFile(path: string): Promise<SnapshotFile> {
  const hash = createHash('sha256');
  await finished(createReadStream(path).on('data', (chunk) => hash.update(chunk)));
  return { path, bytes: (await stat(path)).size, sha256: hash.digest('hex') };
}

export class SnapshotStore {
  private constructor(private readonly nc: NatsConnection, private readonly os: ObjectStore, private readonly names: ClusterNames, private readonly chunkBytes: number) {}

  /** Binds the cluster's snapshot bucket, creating it (with the shard map's replication) when absent. */
  static async open(nc: NatsConnection, names: ClusterNames, replicas: number): Promise<SnapshotStore> {
    const os = await nc.jetstream().views.os(names.snapshotBucket, { replicas, storage: StorageType.File });
    // Chunks as large as a message may be: the client's default 128 KiB chunks moved 20-30 MiB/s
    // on loopback, 1 MiB chunks 34-39 MiB/s (bench:cluster, 2026-12-03).
    return new SnapshotStore(nc, os, names, Math.max(128 * 1024, (nc.info?.max_payload ?? 1024 * 1024) - 4096));
  }

  /** A shard's snapshots (or the catalog's), newest (highest sequence) first. */
  async list(owner: SnapshotOwner): Promise<SnapshotEntry[]> {
    const prefix = `${ownerPrefix(owner)}.seq.`;
    const infos = (await this.os.list()).filter((info) => !info.deleted && info.name.startsWith(prefix));
    infos.sort((a, b) => b.name.localeCompare(a.name)); // zero-padded sequences: name order is sequence order
    return infos.map((info) => ({ name: info.name, manifest: manifestOf(info, this.names.cluster, owner) }));
  }

  async upload(file: SnapshotFile, manifest: SnapshotManifest): Promise<void> {
    const catalog = manifest.shard === catalogSnapshotShard;
    const name = snapshotName(catalog ? 'catalog' : manifest.shard, manifest.sequence);
    const data = Readable.toWeb(createReadStream(file.path)) as unknown as ReadableStream<Uint8Array>;
    await this.os.put({
      name, description: catalog ? `cangen routers' catalog through catalog sequence ${manifest.sequence}` : `cangen index of shard ${manifest.shard} through log sequence ${manifest.sequence}`,
      metadata: { manifest: JSON.stringify(manifest) },
      options: { max_chunk_size: this.chunkBytes },
    }, data);
  }

  /**
   * Downloads a snapshot to `path` and checks it against its manifest (size and SHA-256); a
   * mismatch rejects with ERR_SNAPSHOT and removes the file.
   */
  async download(entry: SnapshotEntry, path: string): Promise<SnapshotManifest> {
    const manifest = entry.manifest;
    if (!manifest) throw new ClusterError('ERR_SNAPSHOT', `Snapshot '${entry.name}' has no cangen manifest in its metadata`);
    const result = await this.os.get(entry.name);
    if (!result) throw new SnapshotGoneError(`Snapshot '${entry.name}' was deleted before it could be read`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const out = createWriteStream(path);
      const reader = result.data.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
        bytes += value.length;
        if (!out.write(value)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      }
      out.end();
      await finished(out);
      const transferError = await result.error;
      // A timeout or lost server is retried by the caller; chunks gone mean the snapshot was pruned meanwhile.
      if (transferError && isTransient(transferError)) throw transferError;
      if (transferError && /digest/i.test(transferError.message)) throw new ClusterError('ERR_SNAPSHOT', `Snapshot '${entry.name}' is damaged in the object store: ${transferError.message}`);
      if (transferError) throw new SnapshotGoneError(`Snapshot '${entry.name}' did not download whole (${transferError.message}): pruned while it was read?`);
      const sha256 = hash.digest('hex');
      if (bytes !== manifest.bytes || sha256 !== manifest.sha256) {
        throw new ClusterError('ERR_SNAPSHOT', `Snapshot '${entry.name}' fails its checksum: ${bytes} bytes with SHA-256 ${sha256}, its manifest says ${manifest.bytes} bytes with ${manifest.sha256}`);
      }
      return manifest;
    } catch (error) {
      await unlink(path).catch(() => undefined);
      throw error;
    }
  }

  /** Deletes a shard's (or the catalog's) snapshots beyond the newest `keep`. */
  async prune(owner: SnapshotOwner, keep: number): Promise<number> {
    const old = (await this.list(owner)).slice(keep);
    for (const entry of old) await this.os.delete(entry.name);
    return old.length;
  }

  /**
   * Purges the chunks of uploads that never completed (a snapshotter killed mid-upload leaves its
   * chunks in the bucket's stream, listed by no object) once their last chunk is older than
   * `olderThanMs`: an upload still under way elsewhere is younger. Returns the bytes' chunk
   * subjects purged.
   */
  async purgeAbandonedUploads(olderThanMs: number): Promise<number> {
    const bucket = this.names.snapshotBucket;
    const stream = `OBJ_${bucket}`;
    const jsm = await this.nc.jetstreamManager();
    const live = new Set((await this.os.list()).map((info) => info.nuid));
    const chunks = (await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.C.>` })).state.subjects ?? {};
    let purged = 0;
    for (const subject of Object.keys(chunks)) {
      if (live.has(subject.slice(subject.lastIndexOf('.') + 1))) continue;
      const last = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => undefined);
      if (!last || Date.now() - last.time.getTime() < olderThanMs) continue;
      await jsm.streams.purge(stream, { filter: subject });
      purged++;
    }
    return purged;
  }
}

function manifestOf(info: ObjectInfo, cluster: string, owner: SnapshotOwner): SnapshotManifest | undefined {
  try {
    const m = JSON.parse(info.metadata?.manifest ?? '') as SnapshotManifest;
    const shard = owner === 'catalog' ? catalogSnapshotShard : owner;
    const ok = m.format === snapshotFormat && m.cluster === cluster && m.shard === shard && Number.isSafeInteger(m.sequence) && m.sequence >= 0 &&
      Number.isSafeInteger(m.bytes) && typeof m.sha256 === 'string' && typeof m.kind === 'string' && snapshotName(owner, m.sequence) === info.name;
    return ok ? m : undefined;
  } catch {
    return undefined;
  }
}

/** A snapshot deleted (pruned by the snapshotter) while it was listed or read: list again. */
export class SnapshotGoneError extends ClusterError {
  constructor(message: string) {
    super('ERR_SNAPSHOT', message);
  }
}

export interface LoadedSnapshot {
  index: AdIndex;
  manifest: SnapshotManifest;
}

export interface SnapshotLoadOutcome {
  loaded?: LoadedSnapshot;
  /** Snapshots tried and passed over (a checksum that fails, a file the index refuses, another kind or dim), each with why. */
  skipped: { name: string; reason: string }[];
}

export interface SnapshotLoadOptions {
  /** The index the replica expects: a snapshot of another kind, dim or metric is passed over. */
  expect: { kind: string; dim: number; metric: string };
  /** The shard's log is purged through this sequence: an older snapshot could not be brought up to date. */
  minSequence?: number;
  threads?: number;
  /** Where the downloaded file goes while it loads (default the OS's temporary directory). */
  dir?: string;
}

/**
 * Loads the newest snapshot of a shard that verifies, falling back to older ones; with none
 * usable, `loaded` is absent and the replica replays the whole log. A snapshot pruned while it is
 * read makes it list again (a few times); a timeout or lost server rejects, for the caller to retry
 * (a failing transfer says nothing about the snapshot, and falling back on it would load an older
 * one or none).
 */
export async function loadNewestSnapshot(store: SnapshotStore, cluster: string, shard: number, options: SnapshotLoadOptions): Promise<SnapshotLoadOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await loadOnce(store, cluster, shard, options);
    } catch (error) {
      if (!(error instanceof SnapshotGoneError) || attempt === 5) throw error;
    }
  }
}

async function loadOnce(store: SnapshotStore, cluster: string, shard: number, options: SnapshotLoadOptions): Promise<SnapshotLoadOutcome> {
  const skipped: SnapshotLoadOutcome['skipped'] = [];
  for (const entry of await store.list(shard)) {
    const m = entry.manifest;
    if (m && m.sequence < (options.minSequence ?? 0)) {
      skipped.push({ name: entry.name, reason: `older than the shard's log, which is trimmed through sequence ${options.minSequence}` });
      continue;
    }
    if (m && (m.kind !== options.expect.kind || m.dim !== options.expect.dim || m.metric !== options.expect.metric)) {
      skipped.push({ name: entry.name, reason: `a ${m.kind} index of dim ${m.dim} and metric ${m.metric}, not the ${options.expect.kind} of dim ${options.expect.dim} and ${options.expect.metric} this replica serves` });
      continue;
    }
    const path = snapshotTempPath(options.dir, cluster, shard);
    try {
      const manifest = await store.download(entry, path);
      const index = await AdIndex.load(path, { threads: options.threads ?? 0 });
      return { loaded: { index, manifest }, skipped };
    } catch (error) {
      if (isTransient(error) || error instanceof SnapshotGoneError) throw error;
      skipped.push({ name: entry.name, reason: (error as Error).message });
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }
  return { skipped };
}
