/** User histories for sequence models: the store interface, its in-process and Redis implementations (docs/HISTORY.md). */
export { HistoryBatch, BatchBuilder } from './batch';
export { HistoryUnavailableError, type HistoryErrorCode } from './errors';
export { MemoryHistoryStore } from './memory-store';
export { RedisHistoryStore } from './redis-store';
export { openHistoryStore, type HistoryStoreOptions } from './open-store';
export { historyDefaults, type HistoryLog, type MemoryHistoryOptions, type RedisHistoryOptions } from './options';
export type { AppendResult, HistoryEvent, HistoryHealth, HistoryStats, StoredEvent, UserHistoryStore } from './types';
