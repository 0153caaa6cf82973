/**
 * An AbortSignal carried into a native search: a one-word SharedArrayBuffer the native loops poll
 * between chunks of work (native/common/cancel.h). A SharedArrayBuffer cannot be detached or
 * resized, so a worker thread may read it while the promise is pending.
 */
import { AbortedError } from './errors';
import { invalid } from './validate';

/** Calls `search` with the cancel word of `signal` (undefined without one); rejects at once when it has already aborted. */
export async function withCancel<T>(signal: unknown, name: string, search: (cancel: Int32Array | undefined) => Promise<T>): Promise<T> {
  if (signal === undefined) return search(undefined);
  if (!(signal instanceof AbortSignal)) throw invalid('an AbortSignal', name, signal);
  if (signal.aborted) throw new AbortedError('The search was aborted before it started');
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const raise = () => Atomics.store(cancel, 0, 1);
  signal.addEventListener('abort', raise, { once: true });
  try {
    return await search(cancel);
  } finally {
    signal.removeEventListener('abort', raise);
  }
}
