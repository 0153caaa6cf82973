/**
 * Where a cluster's state lives in NATS, derived from its name only, so that every process (writer,
 * replica, router) finds the same streams, subjects and buckets without further configuration.
 */
import { invalid } from '../validate';

export interface ClusterNames {
  cluster: string;
  /** The corpus update log: one stream, one subject per shard. */
  logStream: string;
  /** Log messages replicas could not apply (malformed, rejected by the index). */
  deadLetterStream: string;
  /** KV bucket holding the shard map. */
  configBucket: string;
  /** KV bucket of replica registrations (entries expire unless refreshed). */
  membersBucket: string;
  /** Object store bucket of the shards' index snapshots. */
  snapshotBucket: string;
  /** The catalog stream: the service-level writes (names as strings) every router applies in order. */
  catalogStream: string;
  catalogSubject: string;
  /** Where the catalog applier puts catalog messages no router could decode. */
  catalogDeadLetterSubject: string;
  /** Subject of a shard's updates. */
  shardSubject(shard: number): string;
  /** Subject where a shard's rejected updates go. */
  deadLetterSubject(shard: number): string;
  /** Subject a replica answers shard searches on (request-reply). */
  searchSubject(replicaId: string): string;
}

const namePattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a cluster or replica name: letters, digits, '_' and '-' (they become parts of stream, bucket and subject names). */
export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !namePattern.test(value)) throw invalid("1 to 64 letters, digits, '_' or '-'", what, value);
  return value;
}

export function clusterNames(cluster: string): ClusterNames {
  checkName(cluster, 'cluster');
  const prefix = `cangen.${cluster}`;
  return {
    cluster,
    logStream: `CANGEN_${cluster}_LOG`,
    deadLetterStream: `CANGEN_${cluster}_DEAD`,
    configBucket: `cangen_${cluster}_config`,
    membersBucket: `cangen_${cluster}_members`,
    snapshotBucket: `cangen_${cluster}_snapshots`,
    catalogStream: `CANGEN_${cluster}_CATALOG`,
    catalogSubject: `${prefix}.catalog`,
    catalogDeadLetterSubject: `${prefix}.dead.catalog`,
    shardSubject: (shard) => `${prefix}.log.${shard}`,
    deadLetterSubject: (shard) => `${prefix}.dead.${shard}`,
    searchSubject: (replicaId) => `${prefix}.search.${checkName(replicaId, 'replicaId')}`,
  };
}

/** The wildcard covering every shard's log subject. */
export function allShardSubjects(cluster: string): string {
  return `cangen.${cluster}.log.*`;
}

/** The wildcard covering every shard's dead-letter subject. */
export function allDeadLetterSubjects(cluster: string): string {
  return `cangen.${cluster}.dead.*`;
}
