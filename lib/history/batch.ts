/**
 * Histories read for a sequence encoder, as flat arrays: one range of events per user (offsets),
 * and per event a time and dictionary codes for its item and action. The dictionaries hold each
 * distinct item and action name of the batch once, so an encoder maps a name to its model row once
 * (`mapItems`) and then gathers by code, with no object per event.
 */

/** An event after validation: ids as strings, '' for no action. */
export interface StoredEvent {
  item: string;
  action: string;
  time: number;
}

export class HistoryBatch {
  /** The users, in the order asked. */
  readonly users: readonly string[];
  /** users.length + 1 entries: user u's events, oldest first, are [offsets[u], offsets[u + 1]). */
  readonly offsets: Int32Array;
  /** Per event: index of its item in itemNames. */
  readonly itemCodes: Int32Array;
  /** The distinct item ids of the batch. */
  readonly itemNames: readonly string[];
  /** Per event: index of its action in actionNames, -1 for an event without one. */
  readonly actionCodes: Int32Array;
  readonly actionNames: readonly string[];
  /** Per event: its time in seconds. */
  readonly times: Float64Array;

  constructor(parts: Pick<HistoryBatch, 'users' | 'offsets' | 'itemCodes' | 'itemNames' | 'actionCodes' | 'actionNames' | 'times'>) {
    this.users = parts.users;
    this.offsets = parts.offsets;
    this.itemCodes = parts.itemCodes;
    this.itemNames = parts.itemNames;
    this.actionCodes = parts.actionCodes;
    this.actionNames = parts.actionNames;
    this.times = parts.times;
  }

  /** Events in the batch, all users together. */
  get size(): number {
    return this.times.length;
  }

  /** Per event, the row `rows` gives its item (an encoder's item table), or `missing` for items it lacks. */
  mapItems(rows: ReadonlyMap<string, number>, missing = -1): Int32Array {
    return gather(this.itemCodes, this.itemNames.map((name) => rows.get(name) ?? missing), missing);
  }

  /** Per event, the code `codes` gives its action, `missing` for unknown ones and events without one. */
  mapActions(codes: ReadonlyMap<string, number>, missing = -1): Int32Array {
    return gather(this.actionCodes, this.actionNames.map((name) => codes.get(name) ?? missing), missing);
  }

  /** User u's events as objects, oldest first (for inspection and the HTTP route; not for the hot path). */
  eventsOf(u: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (let i = this.offsets[u]!; i < this.offsets[u + 1]!; i++) {
      const a = this.actionCodes[i]!;
      out.push({ item: this.itemNames[this.itemCodes[i]!]!, action: a < 0 ? '' : this.actionNames[a]!, time: this.times[i]! });
    }
    return out;
  }
}

function gather(codes: Int32Array, table: number[], missing: number): Int32Array {
  const out = new Int32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    out[i] = c < 0 ? missing : table[c]!;
  }
  return out;
}

/** Builds a HistoryBatch user by user, event by event (oldest first). */
export class BatchBuilder {
  private readonly users: string[] = [];
  private readonly offsets: number[] = [0];
  private readonly items = new Map<string, number>();
  private readonly actions = new Map<string, number>();
  private itemCodes: Int32Array;
  private actionCodes: Int32Array;
  private times: Float64Array;
  private count = 0;

  /** `expected`: events the batch will likely hold (arrays grow past it). */
  constructor(expected = 64) {
    const n = Math.max(16, expected);
    this.itemCodes = new Int32Array(n);
    this.actionCodes = new Int32Array(n);
    this.times = new Float64Array(n);
  }

  /** Starts the next user's range. */
  user(userId: string): void {
    if (this.users.length > 0) this.offsets.push(this.count);
    this.users.push(userId);
  }

  event(item: string, action: string, time: number): void {
    if (this.count === this.times.length) this.grow();
    this.itemCodes[this.count] = code(this.items, item);
    this.actionCodes[this.count] = action === '' ? -1 : code(this.actions, action);
    this.times[this.count] = time;
    this.count++;
  }

  finish(): HistoryBatch {
    if (this.users.length > 0) this.offsets.push(this.count);
    return new HistoryBatch({
      users: this.users,
      offsets: Int32Array.from(this.offsets),
      itemCodes: this.itemCodes.slice(0, this.count),
      itemNames: [...this.items.keys()],
      actionCodes: this.actionCodes.slice(0, this.count),
      actionNames: [...this.actions.keys()],
      times: this.times.slice(0, this.count),
    });
  }

  private grow(): void {
    const n = this.times.length * 2;
    const items = new Int32Array(n);
    items.set(this.itemCodes);
    this.itemCodes = items;
    const actions = new Int32Array(n);
    actions.set(this.actionCodes);
    this.actionCodes = actions;
    const times = new Float64Array(n);
    times.set(this.times);
    this.times = times;
  }
}

function code(dictionary: Map<string, number>, name: string): number {
  let c = dictionary.get(name);
  if (c === undefined) {
    c = dictionary.size;
    dictionary.set(name, c);
  }
  return c;
}
