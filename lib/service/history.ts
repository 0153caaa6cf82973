/** The service's user-history store, from its configuration (docs/HISTORY.md). */
import { join } from 'node:path';
import { openHistoryStore, type HistoryLog, type HistoryStoreOptions, type UserHistoryStore } from '../history';
import type { ServiceConfig } from './config';

/** The store options the configuration asks for: the 'memory' store's snapshot goes to historyFile, or under dataDir. */
export function historyStoreOptions(config: ServiceConfig, log?: HistoryLog): HistoryStoreOptions {
  if (config.historyStore === 'redis') {
    return { kind: 'redis', url: config.redisUrl!, prefix: config.redisPrefix, maxEvents: config.historyLength, ttlSeconds: config.historyTtlSeconds, log };
  }
  const snapshotFile = config.historyFile ?? (config.dataDir ? join(config.dataDir, 'user-histories.bin') : undefined);
  return { kind: 'memory', maxEvents: config.historyLength, maxUsers: config.historyMaxUsers, snapshotFile, snapshotIntervalMs: config.historySnapshotIntervalMs, log };
}

/** Opens the configured store (Redis: connects, or rejects with ERR_HISTORY_UNAVAILABLE). */
export function openServiceHistories(config: ServiceConfig, log?: HistoryLog): Promise<UserHistoryStore> {
  return openHistoryStore(historyStoreOptions(config, log));
}
