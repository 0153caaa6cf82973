/**
 * Bounding the corpus log: once a shard's snapshots include a prefix of its log, that prefix can
 * be purged. A replica reads its shard's messages through an ordered consumer, which cannot tell
 * purged messages from the other shards' sequence numbers, so a replica resuming below the purged
 * point would skip updates silently. The trim point is therefore recorded first, in the config
 * bucket under `log-trim.<shard>` (only ever raised, by compare-and-set), and every replica checks
 * it: at start (it must load a snapshot at or after it) and whenever its log consumer is re-created.
 */
import type { JetStreamManager, KV, KvEntry } from 'nats';
import type { ClusterNames } from './names';

export function logTrimKey(shard: number): string {
  return `log-trim.${shard}`;
}

/** The highest sequence of the shard's log purged so far (0: none). */
export async function readTrimPoint(config: KV, shard: number): Promise<number> {
  return trimPointOf(await config.get(logTrimKey(shard)));
}

function trimPointOf(entry: KvEntry | null): number {
  if (!entry || entry.operation !== 'PUT') return 0;
  try {
    const value = Number((JSON.parse(new TextDecoder().decode(entry.value)) as { throughSequence?: unknown }).throughSequence);
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  } catch {
    return 0;
  }
}

/**
 * Records `throughSequence` as the shard's trim point (unless one at or above it is recorded),
 * then purges the shard's messages up to it. Returns the trim point in force afterwards.
 */
export async function trimShardLog(jsm: JetStreamManager, config: KV, names: ClusterNames, shard: number, throughSequence: number): Promise<number> {
  const key = logTrimKey(shard);
  for (let attempt = 0; attempt < 5; attempt++) {
    const entry = await config.get(key);
    const current = trimPointOf(entry);
    if (current >= throughSequence) return current;
    const value = new TextEncoder().encode(JSON.stringify({ throughSequence, at: new Date().toISOString() }));
    try {
      if (entry && entry.operation === 'PUT') await config.update(key, value, entry.revision);
      else await config.create(key, value);
    } catch (error) {
      if (/wrong last sequence|key exists/i.test((error as Error).message)) continue; // raised meanwhile: read again
      throw error;
    }
    await jsm.streams.purge(names.logStream, { filter: names.shardSubject(shard), seq: throughSequence + 1 });
    return throughSequence;
  }
  return readTrimPoint(config, shard);
}
