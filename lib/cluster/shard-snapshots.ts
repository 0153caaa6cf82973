/**
 * A replica's side of its shard's snapshots: loading the newest usable one at start (refusing to
 * start below the log's trim point), taking one between two log messages, keeping the newest
 * `keep`, trimming the log behind them (trimLog), and, periodically, snapshotting when this
 * replica holds the shard's lease. The replica (lib/cluster/replica.ts) lends it its index, its
 * applied sequence and its turn-taking with the apply loop (`ReplicaView`).
 */
import { unlink } from 'node:fs/promises';
import type { KV, NatsConnection } from 'nats';
import type { AdIndex } from '../ad-index';
import { integerIn, invalid, knownOptions } from '../validate';
import { ClusterError } from './errors';
import { readTrimPoint, trimShardLog } from './log-trim';
import { memberKey, membersBucket, type MemberEntry } from './membership';
import type { ClusterNames } from './names';
import { KvLease, snapshotLeaseKey } from './lease';
import { loadNewestSnapshot, snapshotFormat, SnapshotStore, snapshotTempPath, writeSnapshotFile, type SnapshotManifest } from './snapshots';

export interface SnapshotOptions {
  /** How often the replica holding the shard's lease snapshots when the index changed (ms, default 300000; 0: only on snapshot()). */
  everyMs?: number;
  /** Snapshots kept per shard, newest first (default 2: one to fall back to). */
  keep?: number;
  /** The lease's length (default 3 x everyMs, at least 60 s): how long a crashed snapshotter holds the role. */
  leaseMs?: number;
  /** Where snapshot files are written and read locally (default the OS's temporary directory). */
  dir?: string;
  /**
   * After storing a snapshot, purge the shard's log up to the oldest snapshot kept, and never past
   * the sequence any registered replica of the shard has applied (default false: the log keeps
   * everything). A replica can then start only from a snapshot at or after the purged point.
   */
  trimLog?: boolean;
}

/** What the snapshots need of their replica. */
export interface ReplicaView {
  readonly index: AdIndex;
  applied(): number;
  /** False while nothing may be snapshotted (an IVF index waiting for its training sample). */
  snapshottable(): boolean;
  /** Runs `task` between two log messages: the index then holds exactly `applied`. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
}

interface Context {
  nc: NatsConnection;
  config: KV;
  names: ClusterNames;
  shard: number;
  replicaId: string;
  streamReplicas: number;
  log: (line: string) => void;
  /** Retries a JetStream call through a failover while the replica starts. */
  patiently: <T>(what: string, call: () => Promise<T>) => Promise<T>;
}

/** An upload whose last chunk is this old and that no object lists was abandoned (its writer died). */
const abandonedUploadMs = 10 * 60_000;

export class ShardSnapshots {
  private taking: Promise<SnapshotManifest | undefined> | undefined;
  private lease: KvLease | undefined;
  private trimmedThrough = 0;
  private taken = 0;
  private newest: { sequence: number; createdAt: number } | undefined;

  private constructor(private readonly store: SnapshotStore, readonly options: SnapshotOptions, private readonly c: Context,
    /** The sequence of the snapshot the replica started from (0: none). */
    readonly startedFrom: number, readonly fallbacks: number) {}

  /**
   * Loads the newest usable snapshot of the shard (of `expect`'s kind, dim and metric, at or after
   * the log's trim point). Without snapshots (`options` undefined), only checks that the log is not
   * trimmed. Rejects with ERR_SNAPSHOT when the log is trimmed past anything that could be loaded.
   */
  static async open(options: SnapshotOptions | undefined, c: Context, expect: { kind: string; dim: number; metric: string; threads?: number }):
    Promise<{ snapshots?: ShardSnapshots; index?: AdIndex }> {
    const trimmed = await c.patiently('reading the log trim point', () => readTrimPoint(c.config, c.shard));
    let result: { snapshots?: ShardSnapshots; index?: AdIndex } = {};
    if (options) {
      const store = await c.patiently('binding the snapshot store', () => SnapshotStore.open(c.nc, c.names, c.streamReplicas));
      const outcome = await c.patiently('loading a snapshot', () => loadNewestSnapshot(store, c.names.cluster, c.shard, {
        expect, minSequence: trimmed, threads: expect.threads, dir: options.dir,
      }));
      for (const { name, reason } of outcome.skipped) c.log(`replica ${c.replicaId}: snapshot ${name} passed over (${reason})`);
      const manifest = outcome.loaded?.manifest;
      const snapshots = new ShardSnapshots(store, options, c, manifest?.sequence ?? 0, outcome.skipped.length);
      if (manifest) {
        snapshots.newest = { sequence: manifest.sequence, createdAt: Date.parse(manifest.createdAt) };
        c.log(`replica ${c.replicaId}: loaded snapshot of shard ${c.shard} at sequence ${manifest.sequence} (${manifest.ads} ads, ${manifest.bytes} bytes)`);
      }
      result = { snapshots, index: outcome.loaded?.index };
    }
    if ((result.snapshots?.startedFrom ?? 0) < trimmed) {
      throw new ClusterError('ERR_SNAPSHOT', `The log of shard ${c.shard} is trimmed through sequence ${trimmed} and ${options ? 'no snapshot at or after it could be loaded' : 'this replica was started with snapshots: false'}: ` +
        'it cannot be rebuilt from the log alone. Restore a snapshot of the shard (or start the replica with snapshots) and try again.');
    }
    return result;
  }

  get takenCount(): number {
    return this.taken;
  }

  /** The newest snapshot of the shard this replica knows of (taken, loaded or listed). */
  get newestKnown(): { sequence: number; createdAt: number } | undefined {
    return this.newest;
  }

  /** Snapshots now (see ShardReplica.snapshot); one at a time. */
  take(replica: ReplicaView): Promise<SnapshotManifest | undefined> {
    this.taking ??= this.takeOnce(replica).finally(() => { this.taking = undefined; });
    return this.taking;
  }

  private async takeOnce(replica: ReplicaView): Promise<SnapshotManifest | undefined> {
    const { names, shard, replicaId } = this.c;
    const path = snapshotTempPath(this.options.dir, names.cluster, shard);
    try {
      const saved = await replica.exclusive(async () => {
        // Nothing new since the newest snapshot, or nothing that may be snapshotted yet.
        if ((this.newest && this.newest.sequence >= replica.applied()) || !replica.snapshottable()) return undefined;
        return { sequence: replica.applied(), ads: replica.index.size, file: await writeSnapshotFile(replica.index, path) };
      });
      if (!saved) return undefined;
      const { index } = replica;
      const manifest: SnapshotManifest = {
        format: snapshotFormat, cluster: names.cluster, shard, sequence: saved.sequence, kind: index.kind, dim: index.dim,
        metric: index.metric, ads: saved.ads, bytes: saved.file.bytes, sha256: saved.file.sha256, createdAt: new Date().toISOString(), replicaId,
      };
      await this.store.upload(saved.file, manifest);
      this.taken++;
      this.newest = { sequence: manifest.sequence, createdAt: Date.parse(manifest.createdAt) };
      const pruned = await this.store.prune(shard, this.options.keep ?? 2);
      // A snapshotter killed mid-upload left chunks no object lists: gone once surely abandoned.
      await this.store.purgeAbandonedUploads(Math.max(abandonedUploadMs, 2 * (this.options.everyMs ?? 0)));
      this.c.log(`replica ${replicaId}: snapshot of shard ${shard} at sequence ${manifest.sequence} stored (${manifest.ads} ads, ${manifest.bytes} bytes; ${pruned} older deleted)`);
      if (this.options.trimLog) await this.trimLog(replica.applied());
      return manifest;
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }

  /** Purges the shard's log through the oldest snapshot kept, but never past what a registered replica of the shard has applied. */
  private async trimLog(applied: number): Promise<void> {
    const { nc, config, names, shard, replicaId } = this.c;
    const oldestKept = (await this.store.list(shard)).filter((e) => e.manifest).at(-1)?.manifest?.sequence ?? 0;
    const members = await membersBucket(nc, names.cluster);
    let through = Math.min(oldestKept, applied);
    // Keys first, entries after: awaiting inside the key listing's loop lost keys (nats 2.29.3).
    const keys: string[] = [];
    for await (const key of await members.keys(`shard.${shard}.*`)) keys.push(key);
    // Its own entry may be a heartbeat old: this replica's applied sequence is taken as it is now.
    for (const key of keys.filter((k) => k !== memberKey(shard, replicaId))) {
      const entry = await members.get(key);
      if (entry?.operation !== 'PUT') continue;
      const memberApplied = Number((JSON.parse(new TextDecoder().decode(entry.value)) as Partial<MemberEntry>).applied);
      if (Number.isSafeInteger(memberApplied)) through = Math.min(through, memberApplied);
    }
    if (through <= this.trimmedThrough) return;
    this.trimmedThrough = await trimShardLog(await nc.jetstreamManager(), config, names, shard, through);
    this.c.log(`replica ${replicaId}: log of shard ${shard} trimmed through sequence ${this.trimmedThrough}`);
  }

  /** The periodic check: learn the newest snapshot (for its age), and snapshot when this replica holds the lease. */
  async tick(replica: ReplicaView): Promise<void> {
    if (this.taking) return;
    const everyMs = this.options.everyMs ?? 0;
    this.lease ??= new KvLease(this.c.config, snapshotLeaseKey(this.c.shard), this.c.replicaId, this.options.leaseMs ?? Math.max(60_000, 3 * everyMs));
    const newest = (await this.store.list(this.c.shard)).find((e) => e.manifest)?.manifest;
    if (newest && newest.sequence > (this.newest?.sequence ?? -1)) this.newest = { sequence: newest.sequence, createdAt: Date.parse(newest.createdAt) };
    if (await this.lease.acquire()) await this.take(replica);
  }

  /** Waits for a snapshot being stored and gives the lease up (a clean stop: another replica takes it at once). */
  async stop(): Promise<void> {
    await this.taking?.catch(() => undefined);
    await this.lease?.release().catch(() => undefined);
  }
}

export function checkSnapshotOptions(options: SnapshotOptions): SnapshotOptions {
  const o = knownOptions(options, 'replica options.snapshots', ['everyMs', 'keep', 'leaseMs', 'dir', 'trimLog']);
  if (o.trimLog !== undefined && typeof o.trimLog !== 'boolean') throw invalid('true or false', 'options.snapshots.trimLog', o.trimLog);
  if (o.dir !== undefined && (typeof o.dir !== 'string' || o.dir.length === 0)) throw invalid('a directory path', 'options.snapshots.dir', o.dir);
  return {
    everyMs: integerIn(o.everyMs ?? 300_000, 'options.snapshots.everyMs', 0, 86_400_000),
    keep: integerIn(o.keep ?? 2, 'options.snapshots.keep', 1, 1000),
    ...(o.leaseMs !== undefined ? { leaseMs: integerIn(o.leaseMs, 'options.snapshots.leaseMs', 100, 86_400_000) } : {}),
    ...(typeof o.dir === 'string' ? { dir: o.dir } : {}),
    ...(o.trimLog ? { trimLog: true } : {}),
  };
}
