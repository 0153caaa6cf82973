/**
 * The in-process user-history store: per user the most recent maxEvents events, in memory, at
 * most maxUsers users (past that, the least recently used user, by append or read, is dropped).
 * With a snapshotFile the state is written atomically on a timer and at close, and loaded at open;
 * a damaged snapshot is passed over (moved aside, with a logged reason) and the store starts empty.
 * Events acknowledged after the last snapshot are lost if the process dies without close(): for
 * per-event durability, or histories shared by replicas, use the Redis store.
 */
import { rename } from 'node:fs/promises';
import { BatchBuilder, type HistoryBatch } from './batch';
import { checkMemoryOptions, type HistoryLog, type MemoryHistoryOptions } from './options';
import { EventRing } from './ring';
import { DamagedSnapshot, encodeSnapshot, readSnapshot, writeSnapshot } from './snapshot-file';
import type { AppendResult, HistoryEvent, HistoryHealth, HistoryStats, UserHistoryStore } from './types';
import { StoreBase } from './store-base';
import { checkRead, groupEvents } from './validate-events';

export class MemoryHistoryStore extends StoreBase implements UserHistoryStore {
  readonly kind = 'memory' as const;
  readonly maxEvents: number;
  readonly maxUsers: number;
  readonly snapshotFile: string | undefined;
  /** Users in least-recently-used order: a Map iterates in insertion order, and a use re-inserts. */
  private readonly users = new Map<string, EventRing>();
  private events = 0;
  private evicted = 0;
  /** Appends since open, and the count the last snapshot saw: a snapshot is written only when they differ. */
  private changes = 0;
  private savedChanges = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly log: HistoryLog;

  private constructor(options: ReturnType<typeof checkMemoryOptions>) {
    super();
    this.maxEvents = options.maxEvents;
    this.maxUsers = options.maxUsers;
    this.snapshotFile = options.snapshotFile;
    this.log = options.log;
    if (this.snapshotFile && options.snapshotIntervalMs > 0) {
      this.timer = setInterval(() => void this.snapshot().catch(() => undefined), options.snapshotIntervalMs).unref();
    }
  }

  /** Opens the store, loading its snapshot when there is one. */
  static async open(options?: MemoryHistoryOptions): Promise<MemoryHistoryStore> {
    const store = new MemoryHistoryStore(checkMemoryOptions(options));
    if (store.snapshotFile) await store.load(store.snapshotFile);
    return store;
  }

  private async load(path: string): Promise<void> {
    let found;
    try {
      // Least recently used first, so the newest users survive a smaller maxUsers.
      found = await readSnapshot(path, (userId) => {
        const ring = this.userRing(userId);
        return (item, action, time) => this.push(ring, item, action, time);
      });
    } catch (error) {
      if (!(error instanceof DamagedSnapshot)) throw error;
      this.users.clear();
      this.events = 0;
      // Kept for inspection, and out of the way of the next snapshot.
      const aside = `${path}.damaged-${Date.now()}`;
      const moved = await rename(path, aside).then(() => true, () => false);
      this.log(`user-history snapshot ${path} ${error.message}; starting with no histories${moved ? ` (the file is kept as ${aside})` : ''}`, 'warn');
      return;
    }
    if (found) this.log(`user-history snapshot ${path}: ${this.users.size} users, ${this.events} events loaded`, 'info');
  }

  async append(events: readonly HistoryEvent[]): Promise<AppendResult> {
    this.assertOpen();
    // Every event is checked before the first is stored: a bad batch changes nothing.
    const byUser = groupEvents(events);
    if (byUser.size === 0) return { appended: 0, users: 0 };
    for (const [userId, list] of byUser) {
      const ring = this.userRing(userId);
      for (const e of list) this.push(ring, e.item, e.action, e.time);
    }
    this.changes++;
    return { appended: events.length, users: byUser.size };
  }

  async recentMany(userIds: readonly string[], limit?: number): Promise<HistoryBatch> {
    this.assertOpen();
    const n = checkRead(userIds, limit, this.maxEvents);
    const batch = new BatchBuilder(userIds.length * Math.min(n, 32));
    for (const userId of userIds) {
      batch.user(userId);
      const ring = this.users.get(userId);
      if (!ring) continue;
      this.touch(userId, ring);
      ring.forEach((item, action, time) => batch.event(item, action, time), n);
    }
    return batch.finish();
  }

  health(): HistoryHealth {
    if (this.closed) return { healthy: false, reason: 'the store is closed' };
    return { healthy: true };
  }

  async stats(): Promise<HistoryStats> {
    return { kind: this.kind, maxEvents: this.maxEvents, users: this.users.size, events: this.events, evictedUsers: this.evicted, healthy: this.health().healthy };
  }

  /**
   * Writes the snapshot now if anything changed since the last one (one write at a time). Appends
   * and reads go on meanwhile: each user's saved history is a state it had during the snapshot.
   */
  snapshot(): Promise<void> {
    const path = this.snapshotFile;
    if (!path) return Promise.resolve();
    // A failed write does not stop the next one.
    this.saving = this.saving.catch(() => undefined).then(async () => {
      if (this.changes === this.savedChanges) return;
      const changes = this.changes;
      try {
        // The users as they stand now (least recently used first): the encoding yields to the event loop.
        await writeSnapshot(path, await encodeSnapshot(this.maxEvents, [...this.users]));
        this.savedChanges = changes;
      } catch (error) {
        this.log(`user-history snapshot ${path} could not be written: ${(error as Error).message}`, 'warn');
        throw error;
      }
    });
    return this.saving;
  }

  /** Writes a last snapshot (rejects if it fails: the events since the last one are then only in memory) and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.snapshot();
  }


  /** The user's ring, created (dropping the least recently used user at the cap) or marked as used. */
  private userRing(userId: string): EventRing {
    const ring = this.users.get(userId);
    if (ring) {
      this.touch(userId, ring);
      return ring;
    }
    if (this.users.size >= this.maxUsers) {
      const [oldest, oldestRing] = this.users.entries().next().value as [string, EventRing];
      this.users.delete(oldest);
      this.events -= oldestRing.length;
      this.evicted++;
    }
    const created = new EventRing(this.maxEvents);
    this.users.set(userId, created);
    return created;
  }

  private touch(userId: string, ring: EventRing): void {
    this.users.delete(userId);
    this.users.set(userId, ring);
  }

  private push(ring: EventRing, item: string, action: string, time: number): void {
    if (!ring.push(item, action, time)) this.events++;
  }
}
