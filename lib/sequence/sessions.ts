/**
 * Per-user sessions of a SequenceEncoder: each user's last encoded window, with every HSTU layer's
 * keys and values, kept natively within a byte budget (least recently used out). When a user's
 * window starts with the cached one (the history only grew, and still fits in maxLen), only the
 * new events are encoded: the attention is causal and its biases depend only on i - j, so this is
 * exact. Otherwise (a window that slid past maxLen, changed events, a SASRec model, whose positions
 * count back from the last event) the whole window is. Results always equal `encoder.encode`.
 */
import { ClosedError } from '../errors';
import type { NativeSequenceSessionStats, NativeSequenceSessions } from '../native';
import { integerIn, invalid, knownOptions } from '../validate';
import { withCallerStack } from '../caller-stack';
import { withPrivateInputs } from '../private-input';
import { checkHistories, type SequenceEncodeOptions, type SequenceHistories } from './histories';

/** The default byte budget of a session cache: 256 MiB. */
export const defaultSessionBytes = 256 * 2 ** 20;

export interface SequenceSessionOptions {
  /** Bytes the sessions may take (keys, values and events); default 256 MiB. 0 keeps none. */
  maxBytes?: number;
}

export type SequenceSessionStats = NativeSequenceSessionStats;

export class SequenceSessions {
  private handle: NativeSequenceSessions | undefined;

  /** Made by `encoder.sessions()`. */
  constructor(handle: NativeSequenceSessions, private readonly threads: number) {
    this.handle = handle;
  }

  /**
   * As `encoder.encode(histories)`, user u's session being `users[u]`'s: pass each user's whole
   * recent history (e.g. from a history store), and the events already encoded are not redone.
   */
  encode(users: readonly string[], histories: SequenceHistories, options?: SequenceEncodeOptions): Promise<Float32Array> {
    const handle = this.open();
    const { items, offsets, actions, times } = checkHistories(histories);
    if (!Array.isArray(users) || users.length !== offsets.length - 1 || !users.every((u) => typeof u === 'string')) {
      throw invalid(`an array of ${offsets.length - 1} user id strings (one per history)`, 'users', users);
    }
    const o = knownOptions(options, 'encode options', ['threads']);
    const threads = integerIn(o.threads ?? 0, 'options.threads', 0, 4096) || this.threads;
    const names = [...users];
    const call = withPrivateInputs([items, offsets, actions, times], ['items', 'offsets', 'actions', 'times'], (i, off, a, t) =>
      handle.encode(i, off, a, t, threads, names),
    );
    return withCallerStack(call);
  }

  /** Drops these users' sessions (e.g. when their history was edited or deleted). */
  forget(users: readonly string[]): void {
    if (!Array.isArray(users) || !users.every((u) => typeof u === 'string')) throw invalid('an array of user id strings', 'users', users);
    this.open().forget([...users]);
  }

  /** Sessions held, their bytes and budget, and the events reused and encoded so far. */
  stats(): SequenceSessionStats {
    return this.open().stats();
  }

  /** Frees the sessions; later calls throw ClosedError. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private open(): NativeSequenceSessions {
    if (!this.handle) throw new ClosedError('These sequence sessions are closed: open new ones with encoder.sessions()');
    return this.handle;
  }
}
