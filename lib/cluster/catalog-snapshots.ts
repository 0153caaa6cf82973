/**
 * Snapshots of the pipeline routers' catalog, so that a new router starts from the newest one and
 * replays only the catalog stream after it, rather than all of it. The catalog applier's router
 * (one at a time) copies its corpus's SQLite catalog (AdCorpus.backupCatalog: consistent while
 * writes go on; it records the catalog sequence it includes) and uploads it to the cluster's
 * snapshot object store as `catalog.seq.<sequence>`, with a manifest and the file's SHA-256, as
 * shard snapshots are (snapshots.ts). A router starting with an empty dataDir downloads the newest
 * that verifies into it before opening its corpus.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { catalogFile, type AdCorpus } from '../corpus/ad-corpus';
import type { ShardMap } from './shard-map';
import { catalogSnapshotShard, hashedFile, snapshotFormat, snapshotTempPath, type SnapshotManifest, type SnapshotStore } from './snapshots';
import { isTransient } from './transient';

/** Catalog snapshots kept: the newest, and one to fall back on. */
const keep = 2;

/** Uploads a copy of `corpus`'s catalog; resolves with its manifest, and prunes older snapshots. */
export async function saveCatalogSnapshot(store: SnapshotStore, corpus: AdCorpus, map: ShardMap, routerId: string, dir?: string): Promise<SnapshotManifest> {
  const path = snapshotTempPath(dir, map.cluster, catalogSnapshotShard);
  try {
    const { origin } = await corpus.backupCatalog(path);
    const file = await hashedFile(path);
    const manifest: SnapshotManifest = {
      format: snapshotFormat, cluster: map.cluster, shard: catalogSnapshotShard, sequence: origin, kind: 'catalog', dim: map.dim, metric: map.metric,
      ads: corpus.size, bytes: file.bytes, sha256: file.sha256, createdAt: new Date().toISOString(), replicaId: routerId,
    };
    await store.upload(file, manifest);
    await store.prune('catalog', keep);
    return manifest;
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

/**
 * Puts the newest catalog snapshot that verifies into `dataDir` as its catalog, unless the
 * directory has a catalog already; resolves with its manifest, or undefined when there is none to
 * use (the router then replays the whole stream). Snapshots that fail their checksum are passed
 * over, each reported to `log`.
 */
export async function restoreCatalogSnapshot(store: SnapshotStore, dataDir: string, log: (line: string) => void): Promise<SnapshotManifest | undefined> {
  const target = join(dataDir, catalogFile);
  if (existsSync(target)) return undefined;
  mkdirSync(dataDir, { recursive: true });
  for (const entry of await store.list('catalog')) {
    if (!entry.manifest) continue;
    const partial = `${target}.download`;
    try {
      const manifest = await store.download(entry, partial);
      // Renamed into place only once whole and verified: a crash meanwhile leaves no half catalog behind.
      await rename(partial, target);
      return manifest;
    } catch (error) {
      await unlink(partial).catch(() => undefined);
      if (isTransient(error)) throw error;
      log(`catalog snapshot ${entry.name} passed over: ${(error as Error).message}`);
    }
  }
  return undefined;
}
