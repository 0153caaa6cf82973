/**
 * The shard map: how many shards the corpus has, how an ad finds its shard, and what every
 * shard's index looks like (dimension, metric). It is stored once, as JSON, under the key
 * 'shard-map' of the cluster's config KV bucket; writers, replicas and routers read it from there.
 * It is created with compare-and-set (kv.create), so two processes initialising the same cluster
 * cannot store different maps.
 */
import type { KV, NatsConnection } from 'nats';
import { metrics, type Metric } from '../metric';
import { integerIn, oneOf } from '../validate';
import { ClusterError, NoShardMapError } from './errors';
import { clusterNames } from './names';
import { shardHashName } from './shard-hash';

export const shardMapKey = 'shard-map';

export interface ShardMap {
  /** Format of this record (1). */
  version: 1;
  cluster: string;
  shards: number;
  /** Always 'fnv1a32-le64' (lib/cluster/shard-hash.ts). */
  hash: typeof shardHashName;
  dim: number;
  metric: Metric;
  /** JetStream replication factor of the log stream and buckets. */
  streamReplicas: number;
  /** Registrations not refreshed within this many ms are gone. */
  membershipTtlMs: number;
  /** What decides an ad's shard: its id ('ad', the default) or its advertiser ('advertiser': every ad of an advertiser on one shard). */
  placement: Placement;
  createdAt: string;
}

export type Placement = 'ad' | 'advertiser';
export const placements: readonly Placement[] = ['ad', 'advertiser'];

/** Opens (binds to) the cluster's config bucket. */
export async function configBucket(nc: NatsConnection, cluster: string): Promise<KV> {
  return nc.jetstream().views.kv(clusterNames(cluster).configBucket, { bindOnly: true });
}

/** Parses and checks a stored shard map. */
export function parseShardMap(bytes: Uint8Array, cluster: string): ShardMap {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch (error) {
    throw new ClusterError('ERR_SHARD_MAP', `The shard map of cluster '${cluster}' is not JSON (${(error as Error).message}): re-create the cluster`);
  }
  if (value.version !== 1 || value.hash !== shardHashName) {
    throw new ClusterError('ERR_SHARD_MAP', `The shard map of cluster '${cluster}' has version ${String(value.version)} and hash ${String(value.hash)}; this cangen reads version 1 with hash ${shardHashName}: upgrade cangen`);
  }
  return {
    version: 1,
    cluster,
    shards: integerIn(value.shards, 'shardMap.shards', 1, 65536),
    hash: shardHashName,
    dim: integerIn(value.dim, 'shardMap.dim', 1, 65536),
    metric: oneOf(value.metric, 'shardMap.metric', metrics),
    streamReplicas: integerIn(value.streamReplicas, 'shardMap.streamReplicas', 1, 5),
    membershipTtlMs: integerIn(value.membershipTtlMs, 'shardMap.membershipTtlMs', 100, 3_600_000),
    // Maps stored before placements existed place by ad id.
    placement: oneOf(value.placement ?? 'ad', 'shardMap.placement', placements),
    createdAt: String(value.createdAt),
  };
}

/** Reads the shard map; NoShardMapError when none is stored (or the bucket does not exist). */
export async function readShardMap(nc: NatsConnection, cluster: string): Promise<ShardMap> {
  let entry;
  try {
    entry = await (await configBucket(nc, cluster)).get(shardMapKey);
  } catch (error) {
    if (!/not found|no stream/i.test((error as Error).message)) throw error;
  }
  if (!entry || entry.operation !== 'PUT') throw noShardMap(cluster);
  return parseShardMap(entry.value, cluster);
}

export function noShardMap(cluster: string): NoShardMapError {
  const names = clusterNames(cluster);
  return new NoShardMapError(
    `No shard map is known for cluster '${cluster}' (key '${shardMapKey}' in KV bucket '${names.configBucket}'): ` +
      'initialise the cluster first (initCluster() from cangen, once per deployment), and check that this process uses the same cluster name and NATS servers',
  );
}

/** Stores `map` unless one exists; returns the stored map, which must agree with `map` on shards, dim, metric and placement. */
export async function storeShardMap(kv: KV, map: ShardMap): Promise<ShardMap> {
  try {
    await kv.create(shardMapKey, new TextEncoder().encode(JSON.stringify(map)));
    return map;
  } catch (error) {
    const entry = await kv.get(shardMapKey);
    if (!entry || entry.operation !== 'PUT') throw error;
    const stored = parseShardMap(entry.value, map.cluster);
    for (const field of ['shards', 'dim', 'metric', 'placement'] as const) {
      if (stored[field] !== map[field]) {
        throw new ClusterError('ERR_SHARD_MAP', `Cluster '${map.cluster}' already has ${field} ${stored[field]}, not ${map[field]}: resharding is not supported; use a new cluster name`);
      }
    }
    return stored;
  }
}
