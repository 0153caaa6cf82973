/**
 * Creates a cluster's JetStream state once per deployment: the corpus log stream (one subject per
 * shard), the catalog stream (routers' service-level writes), the dead-letter stream, the config bucket with the shard map, the membership
 * bucket whose entries expire unless replicas refresh them, and the snapshot object store. Running it again with the same
 * settings is harmless; different shards, dim or metric are refused (no resharding yet).
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import { metrics, type Metric } from '../metric';
import { integerIn, knownOptions, oneOf } from '../validate';
import { allDeadLetterSubjects, allShardSubjects, clusterNames } from './names';
import { shardHashName } from './shard-hash';
import { placements, storeShardMap, type Placement, type ShardMap } from './shard-map';
import { isTransient, retryTransient } from './transient';

export interface ClusterInitOptions {
  /** Names the streams, buckets and subjects (letters, digits, '_', '-'). */
  cluster: string;
  /** Number of shards S (1 to 65536). */
  shards: number;
  /** Embedding dimension of every shard's index. */
  dim: number;
  /** 'ip' (default), 'l2' or 'cosine'. */
  metric?: Metric;
  /** JetStream replication factor of the log, dead letters and buckets: 1 (default), 3 or 5 (needs that many servers). */
  streamReplicas?: number;
  /** A replica registration not refreshed within this many ms expires (default 5000). */
  membershipTtlMs?: number;
  /**
   * What decides an ad's shard: 'ad' (default: a hash of its id, the most even spread) or
   * 'advertiser' (a hash of its advertiser: every ad of an advertiser on one shard, so a search
   * filtered to some advertisers asks only their shards; upserts must give each ad's advertiser,
   * which must never change, and removes and attribute changes go to every shard).
   */
  placement?: Placement;
}

export const clusterDefaults = { metric: 'ip' as Metric, streamReplicas: 1, membershipTtlMs: 5000, placement: 'ad' as Placement };

export async function initCluster(nc: NatsConnection, options: ClusterInitOptions): Promise<ShardMap> {
  const o = knownOptions(options, 'initCluster options', ['cluster', 'shards', 'dim', 'metric', 'streamReplicas', 'membershipTtlMs', 'placement']);
  const names = clusterNames(options.cluster);
  const map: ShardMap = {
    version: 1,
    cluster: names.cluster,
    shards: integerIn(o.shards, 'options.shards', 1, 65536),
    hash: shardHashName,
    dim: integerIn(o.dim, 'options.dim', 1, 65536),
    metric: oneOf(o.metric ?? clusterDefaults.metric, 'options.metric', metrics),
    streamReplicas: integerIn(o.streamReplicas ?? clusterDefaults.streamReplicas, 'options.streamReplicas', 1, 5),
    membershipTtlMs: integerIn(o.membershipTtlMs ?? clusterDefaults.membershipTtlMs, 'options.membershipTtlMs', 100, 3_600_000),
    placement: oneOf(o.placement ?? clusterDefaults.placement, 'options.placement', placements),
    createdAt: new Date().toISOString(),
  };
  // Every step checks what exists first, so the whole is retried through a JetStream failover (30 s at most).
  return retryTransient(async () => {
    const jsm = await nc.jetstreamManager();
    const replicas = map.streamReplicas;
    await ensureStream(jsm, names.logStream, allShardSubjects(names.cluster), replicas);
    await ensureStream(jsm, names.deadLetterStream, allDeadLetterSubjects(names.cluster), replicas);
    await ensureStream(jsm, names.catalogStream, names.catalogSubject, replicas);
    const js = nc.jetstream();
    await js.views.kv(names.membersBucket, { history: 1, ttl: map.membershipTtlMs, replicas });
    await js.views.os(names.snapshotBucket, { replicas, storage: StorageType.File });
    const config = await js.views.kv(names.configBucket, { history: 1, replicas });
    return storeShardMap(config, map);
  }, 30_000);
}

async function ensureStream(jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>, name: string, subject: string, replicas: number): Promise<void> {
  try {
    await jsm.streams.info(name);
  } catch (error) {
    if (isTransient(error)) throw error;
    // The log is the source of truth until snapshots exist: nothing expires, writes beyond limits are refused rather than old ones dropped.
    await jsm.streams.add({ name, subjects: [subject], num_replicas: replicas, storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.New });
  }
}
