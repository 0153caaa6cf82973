/**
 * One user's events in the in-process store: the most recent `capacity` ones, in arrival order.
 * Three parallel arrays grow up to the capacity, then the oldest slot is overwritten (a ring), so
 * a user with few events costs little and an append never shifts the arrays.
 */
export class EventRing {
  private readonly items: string[] = [];
  private readonly actions: string[] = [];
  private readonly times: number[] = [];
  /** Slot of the oldest event once the ring is full. */
  private start = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.times.length;
  }

  /** Adds an event; returns true when it pushed the oldest one out. */
  push(item: string, action: string, time: number): boolean {
    if (this.times.length < this.capacity) {
      this.items.push(item);
      this.actions.push(action);
      this.times.push(time);
      return false;
    }
    this.items[this.start] = item;
    this.actions[this.start] = action;
    this.times[this.start] = time;
    this.start = (this.start + 1) % this.capacity;
    return true;
  }

  /** Visits the most recent `limit` events (all by default), oldest first. */
  forEach(visit: (item: string, action: string, time: number) => void, limit = this.length): void {
    const n = this.times.length;
    for (let k = Math.max(0, n - limit); k < n; k++) {
      const i = (this.start + k) % n;
      visit(this.items[i]!, this.actions[i]!, this.times[i]!);
    }
  }
}
