/** What both user-history stores share: the single-user read and the closed state. */
import { ClosedError } from '../errors';
import type { HistoryBatch } from './batch';

export abstract class StoreBase {
  protected closed = false;

  abstract recentMany(userIds: readonly string[], limit?: number): Promise<HistoryBatch>;

  recent(userId: string, limit?: number): Promise<HistoryBatch> {
    return this.recentMany([userId], limit);
  }

  protected assertOpen(): void {
    if (this.closed) throw new ClosedError('The user-history store is closed');
  }
}
