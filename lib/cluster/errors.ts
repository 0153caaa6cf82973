/**
 * Errors of the sharded corpus. They extend CangenError so that callers handle every cangen
 * failure the same way (`switch (err.code)`); their codes are listed here.
 */
import { CangenError, type CangenErrorCode } from '../errors';

export type ClusterErrorCode =
  /** No shard map is stored for the cluster: it was never initialised, or the wrong name or server was given. */
  | 'ERR_NO_SHARD_MAP'
  /** A shard map that disagrees with the caller (other dimension, metric or shard count) or cannot be read. */
  | 'ERR_SHARD_MAP'
  /** A corpus log message or shard search payload that is not what this version of cangen writes. */
  | 'ERR_MALFORMED_MESSAGE'
  /** A snapshot that fails its checksum, has no manifest, or was deleted while read. */
  | 'ERR_SNAPSHOT'
  /** JetStream refused or did not answer (stream missing, server unreachable, a write not stored). */
  | 'ERR_CLUSTER';

export class ClusterError extends CangenError {
  constructor(code: ClusterErrorCode, message: string) {
    // The foundation's CangenErrorCode union names its own codes only; ours widen it here.
    super(code as unknown as CangenErrorCode, message);
  }
}

/** A router or writer asked to work on a cluster whose shard map it cannot find. */
export class NoShardMapError extends ClusterError {
  constructor(message: string) {
    super('ERR_NO_SHARD_MAP', message);
  }
}

/** Bytes that do not decode as a cangen log message or search payload; the message says what is wrong. */
export class MalformedMessageError extends ClusterError {
  constructor(message: string) {
    super('ERR_MALFORMED_MESSAGE', message);
  }
}
