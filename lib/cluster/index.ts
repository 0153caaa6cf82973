/** The sharded, replicated corpus on NATS JetStream (docs/CLUSTER.md). */
export { initCluster, clusterDefaults, type ClusterInitOptions } from './cluster-init';
export { CorpusLog, type CorpusLogOptions, type CorpusLogStats } from './corpus-log';
export { ShardReplica, type ReplicaOptions, type ReplicaStats } from './replica';
export { type SnapshotOptions } from './shard-snapshots';
export { type TrainOptions } from './log-trainer';
export { type SnapshotManifest } from './snapshots';
export { ClusterRouter, routerDefaults, type RouterOptions, type ClusterSearchOptions, type ClusterSearchResult, type ShardOutcome, type RouterStats } from './router';
export { readShardMap, type ShardMap } from './shard-map';
export { shardOf, adIdHash, shardHashName } from './shard-hash';
export { clusterNames, type ClusterNames } from './names';
export { laterPosition, type LogPosition } from './log-position';
export { type MemberEntry, type ReplicaHealth } from './membership';
export { encodeUpdate, decodeUpdate, updateFormatVersion, type CorpusUpdate, type UpdateOperation } from './update-codec';
export { mergeShardResults } from './merge-shards';
export { ClusterError, NoShardMapError, MalformedMessageError, type ClusterErrorCode } from './errors';
export { ClusterMetrics } from './metrics';
export { createRouterServer, type RouterServer, type RouterServerOptions } from './router-http';
