/**
 * User histories: the recent events (item, action, time) of each user, kept for a sequence encoder.
 * Two implementations share the UserHistoryStore interface: in-process (memory-store.ts, snapshots
 * on disk) and Redis (redis-store.ts, shared by service replicas).
 */
import type { HistoryBatch, StoredEvent } from './batch';

export type { StoredEvent };

/** One thing a user did. */
export interface HistoryEvent {
  userId: string;
  /** Item (ad) id: a name, or a 64-bit id as a bigint (kept as its decimal string). */
  item: string | bigint;
  /** Action type ('view', 'click', 'cart' ...); none when the log has no actions. */
  action?: string;
  /** When, in seconds (Unix time or any clock of the caller's; finite, >= 0). */
  time: number;
}

export interface AppendResult {
  /** Events stored (the whole batch: a batch is stored whole or not at all). */
  appended: number;
  /** Distinct users in the batch. */
  users: number;
}

export interface HistoryHealth {
  healthy: boolean;
  /** Why not, when not healthy. */
  reason?: string;
}

export interface HistoryStats {
  kind: 'memory' | 'redis';
  /** Events kept per user (the most recent ones). */
  maxEvents: number;
  /** Users and events held (memory: exact; Redis: users under the key prefix, events not counted, -1). */
  users: number;
  events: number;
  /** Users dropped to stay under the users cap (memory only) since open. */
  evictedUsers: number;
  healthy: boolean;
}

export interface UserHistoryStore {
  readonly kind: 'memory' | 'redis';
  /** Events kept per user: older ones are dropped as new ones arrive. */
  readonly maxEvents: number;
  /**
   * Appends a batch, in order: each user's events keep the order of the batch, after the events
   * of batches acknowledged before. The batch is checked first and stored whole or not at all;
   * the promise resolves once it is stored (Redis: confirmed by the server). Unknown users are created.
   */
  append(events: readonly HistoryEvent[]): Promise<AppendResult>;
  /** One user's most recent events (at most `limit`, default maxEvents), oldest first. */
  recent(userId: string, limit?: number): Promise<HistoryBatch>;
  /** Many users' at once, in the order asked (a user with no history has an empty range). */
  recentMany(userIds: readonly string[], limit?: number): Promise<HistoryBatch>;
  /** Whether the store can take and serve events now, and why not. */
  health(): HistoryHealth;
  stats(): Promise<HistoryStats>;
  /** Saves (memory: a last snapshot) and releases the store; later calls fail with ERR_CLOSED. */
  close(): Promise<void>;
}
