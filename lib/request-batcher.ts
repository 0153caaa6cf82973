/**
 * Dynamic batching of concurrent requests to one native target (an index, a scorer), the way
 * inference servers batch: several requests' queries go in one native call and the answers are
 * split back. A request that finds fewer than maxInFlight calls running is sent at once: it
 * shares its call only with requests made in the same synchronous run (a generator pipeline
 * starts all its generators in one), gathered on a microtask, never behind a timer or a tick.
 * Past that, requests queue, and each completion sends the queue, one call per key of at most
 * maxBatchSize requests; a queued request waits at most maxDelayMs for that. So batches form only
 * under load. Limiting the calls in flight is what makes them form: with every caller's call
 * running at once, each completion would release one caller whose next request goes alone.
 */
import { defaults } from './defaults';
import { AbortedError } from './errors';
import { limits } from './system';
import { integerIn, invalid, knownOptions, numberIn } from './validate';

export interface BatchingOptions {
  /** Gather concurrent requests into shared native calls (default true); false: one call per request. */
  enabled?: boolean;
  /** Most requests in one native call (default 64). */
  maxBatchSize?: number;
  /**
   * Most milliseconds a queued request waits for the calls in flight (default 5): once the oldest
   * has waited that long, the queue is sent even though a call is still running.
   */
  maxDelayMs?: number;
  /**
   * Calls of this target running at once before requests queue (default: the thread budget,
   * `limits().threads`: the cores the process may use, cgroup quota included; right for calls of
   * one thread each, while 1 suits calls that use every core).
   */
  maxInFlight?: number;
}

/** Checked batching options with their defaults (InvalidArgumentError names the bad one). */
export function batchingOptions(options: BatchingOptions | undefined, label: string): Required<BatchingOptions> {
  const o = knownOptions(options, label, ['enabled', 'maxBatchSize', 'maxDelayMs', 'maxInFlight']);
  const enabled = o.enabled ?? defaults.batching.enabled;
  if (typeof enabled !== 'boolean') throw invalid('true or false', `${label}.enabled`, enabled);
  return {
    enabled,
    maxBatchSize: integerIn(o.maxBatchSize ?? defaults.batching.maxBatchSize, `${label}.maxBatchSize`, 1, 65_536),
    maxDelayMs: numberIn(o.maxDelayMs ?? defaults.batching.maxDelayMs, `${label}.maxDelayMs`, 0, 60_000),
    maxInFlight: integerIn(o.maxInFlight ?? limits().threads, `${label}.maxInFlight`, 1, 4096),
  };
}

/** A call never carries a request that asked for under 1/maxSizeRatio of the largest k in it. */
export const maxSizeRatio = 4;

/**
 * Splits one key's requests into calls by size (k): largest first, a call takes requests down to
 * 1/maxSizeRatio of its largest (one large k would cost the whole batch its selection and its
 * result copy), and any request `joins` says it can ride along with (the same vector: one row).
 * Returns groups of indexes into `items`.
 */
export function splitBySize<I>(items: readonly I[], sizeOf: (item: I) => number, joins?: (item: I, member: I) => boolean): number[][] {
  const order = items.map((_, i) => i).sort((a, b) => sizeOf(items[b]!) - sizeOf(items[a]!));
  const groups: number[][] = [];
  let floor = -1;
  for (const i of order) {
    const item = items[i]!;
    const twin = joins ? groups.find((g) => g.some((m) => joins(item, items[m]!))) : undefined;
    if (twin) twin.push(i);
    else if (groups.length > 0 && sizeOf(item) >= floor) groups[groups.length - 1]!.push(i);
    else {
      groups.push([i]);
      floor = sizeOf(item) / maxSizeRatio;
    }
  }
  return groups;
}

/**
 * One native call for `items` (all of one key): resolves with one result per item, in order.
 * `signal` aborts once every item's asker has given up (undefined when one never does).
 */
export type BatchRun<I, R> = (items: readonly I[], key: string, signal: AbortSignal | undefined) => Promise<R[]>;

interface Entry<I, R> {
  item: I;
  key: string;
  signal: AbortSignal | undefined;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  settled: boolean;
  onAbort: (() => void) | undefined;
  queuedAt: number;
}

export interface BatcherStats {
  /** Native calls made. */
  calls: number;
  /** Requests those calls answered (or were started for). */
  requests: number;
  /** The largest batch sent. */
  largestBatch: number;
}

export class RequestBatcher<I, R> {
  readonly options: Readonly<Required<BatchingOptions>>;
  readonly stats: BatcherStats = { calls: 0, requests: 0, largestBatch: 0 };
  private readonly run: BatchRun<I, R>;
  private queue = new Map<string, Entry<I, R>[]>();
  private queued = 0;
  private inFlight = 0;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;

  private readonly split: ((items: readonly I[]) => number[][]) | undefined;

  /**
   * `split` divides one key's queued requests into calls (as index groups, e.g. splitBySize); each
   * is then cut at maxBatchSize. Without it a key's requests go together.
   */
  constructor(run: BatchRun<I, R>, options: BatchingOptions | undefined, label = 'batching options', split?: (items: readonly I[]) => number[][]) {
    this.run = run;
    this.options = Object.freeze(batchingOptions(options, label));
    this.split = split;
  }

  /** Native calls running now. */
  get running(): number {
    return this.inFlight;
  }

  /**
   * `item`'s result, from a call shared with requests of the same key. A request whose signal
   * aborts rejects with AbortedError at once; the others in its call are not disturbed.
   */
  submit(key: string, item: I, signal?: AbortSignal): Promise<R> {
    if (signal?.aborted) return Promise.reject(new AbortedError('The search was aborted before it started'));
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<I, R> = { item, key, signal, resolve, reject, settled: false, onAbort: undefined, queuedAt: performance.now() };
      if (!this.options.enabled) {
        this.send(key, [entry]);
        return;
      }
      if (signal) {
        entry.onAbort = () => this.abandon(entry);
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      let group = this.queue.get(key);
      if (!group) this.queue.set(key, (group = []));
      group.push(entry);
      this.queued++;
      if (group.length >= this.options.maxBatchSize) {
        // Full: waiting cannot make it larger.
        this.sendGroup(key, group);
      } else if (this.inFlight < this.options.maxInFlight) {
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          queueMicrotask(() => this.flush(false));
        }
      } else {
        this.armTimer();
      }
    });
  }

  /**
   * Sends queued requests, one call per key of at most maxBatchSize, the longest-waiting key first,
   * while fewer than maxInFlight calls run (`all`: every one, the oldest having waited maxDelayMs).
   */
  private flush(all: boolean): void {
    this.flushScheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [key, group] of this.queue) {
      if (!all && this.inFlight >= this.options.maxInFlight) break;
      this.sendGroup(key, group);
    }
    this.armTimer();
  }

  /** Takes a key's queued requests out of the queue and sends them: split, then cut at maxBatchSize. */
  private sendGroup(key: string, group: Entry<I, R>[]): void {
    this.queue.delete(key);
    this.queued -= group.length;
    const parts = this.split && group.length > 1 ? this.split(group.map((e) => e.item)).map((part) => part.map((i) => group[i]!)) : [group];
    const max = this.options.maxBatchSize;
    for (const part of parts) {
      for (let at = 0; at < part.length; at += max) this.send(key, part.slice(at, at + max));
    }
  }

  /** Sends the whole queue once its oldest request has waited maxDelayMs. */
  private armTimer(): void {
    if (this.timer || this.queued === 0) return;
    let oldest = Infinity;
    for (const group of this.queue.values()) oldest = Math.min(oldest, group[0]!.queuedAt);
    // Whole milliseconds, rounded up: timers fire on the loop's millisecond clock.
    this.timer = setTimeout(() => this.flush(true), Math.max(0, Math.ceil(oldest + this.options.maxDelayMs - performance.now())));
  }

  private send(key: string, batch: Entry<I, R>[]): void {
    this.inFlight++;
    this.stats.calls++;
    this.stats.requests += batch.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    let call: Promise<R[]>;
    try {
      call = this.run(batch.map((e) => e.item), key, allAborted(batch.map((e) => e.signal)));
    } catch (error) {
      call = Promise.reject(error);
    }
    // The queue goes before the answers are handed out: the next call starts as soon as possible.
    const next = () => {
      this.inFlight--;
      if (this.queued > 0) this.flush(false);
    };
    call.then(
      (results) => {
        next();
        batch.forEach((e, i) => settle(e, () => e.resolve(results[i]!)));
      },
      (error) => {
        next();
        batch.forEach((e) => settle(e, () => e.reject(error)));
      },
    );
  }

  /** A queued request leaves its group; one in flight is answered now and its call goes on for the others. */
  private abandon(entry: Entry<I, R>): void {
    const group = this.queue.get(entry.key);
    const at = group ? group.indexOf(entry) : -1;
    if (at >= 0) {
      group!.splice(at, 1);
      this.queued--;
      if (group!.length === 0) this.queue.delete(entry.key);
    }
    settle(entry, () => entry.reject(new AbortedError(at >= 0 ? 'The search was aborted while queued for a batch' : 'The search was aborted; its batch goes on for the others')));
  }
}

function settle<I, R>(entry: Entry<I, R>, answer: () => void): void {
  if (entry.settled) return;
  entry.settled = true;
  if (entry.onAbort) entry.signal!.removeEventListener('abort', entry.onAbort);
  answer();
}

/** A signal that aborts once every one of `signals` has (undefined when one of them is absent: that asker never gives up). */
export function allAborted(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  if (signals.length === 0 || signals.some((s) => s === undefined)) return undefined;
  if (signals.length === 1) return signals[0];
  const all = new AbortController();
  let left = signals.length;
  for (const s of signals as AbortSignal[]) {
    if (s.aborted) left--;
    else s.addEventListener('abort', () => --left === 0 && all.abort(s.reason), { once: true });
  }
  if (left === 0) all.abort();
  return all.signal;
}
