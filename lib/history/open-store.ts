/** Opens the user-history store an application configured: in-process or Redis. */
import { oneOf } from '../validate';
import { MemoryHistoryStore } from './memory-store';
import type { MemoryHistoryOptions, RedisHistoryOptions } from './options';
import { RedisHistoryStore } from './redis-store';
import type { UserHistoryStore } from './types';

export type HistoryStoreOptions = ({ kind: 'memory' } & MemoryHistoryOptions) | ({ kind: 'redis' } & RedisHistoryOptions);

export async function openHistoryStore(options: HistoryStoreOptions): Promise<UserHistoryStore> {
  const { kind, ...rest } = options;
  oneOf(kind, 'kind', ['memory', 'redis']);
  return kind === 'memory' ? MemoryHistoryStore.open(rest as MemoryHistoryOptions) : RedisHistoryStore.open(rest as RedisHistoryOptions);
}
