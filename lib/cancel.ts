/**
 * An AbortSignal carried into a native search: a one-word SharedArrayBuffer the native loops poll
 * between chunks of work (native/common/cancel.h). A SharedArrayBuffer cannot be detached or
 * resized, so a worker thread may read it while the promise is pending.
 *
 * One word per signal, raised by one listener registered the first time the signal is seen: a
 * service passes a request's signal to every search of that request, and adding and removing an
 * EventTarget listener per search cost microseconds each.
 */
import { AbortedError } from './errors';
import { invalid } from './validate';

const words = new WeakMap<AbortSignal, Int32Array>();

function cancelWordOf(signal: AbortSignal): Int32Array {
  let word = words.get(signal);
  if (word === undefined) {
    const raised = new Int32Array(new SharedArrayBuffer(4));
    signal.addEventListener('abort', () => Atomics.store(raised, 0, 1), { once: true });
    words.set(signal, raised);
    word = raised;
  }
  return word;
}

/** Calls `search` with the cancel word of `signal` (undefined without one); rejects at once when it has already aborted. */
export function withCancel<T>(signal: unknown, name: string, search: (cancel: Int32Array | undefined) => Promise<T>): Promise<T> {
  if (signal === undefined) return search(undefined);
  if (!(signal instanceof AbortSignal)) return Promise.reject(invalid('an AbortSignal', name, signal));
  if (signal.aborted) return Promise.reject(new AbortedError('The search was aborted before it started'));
  return search(cancelWordOf(signal));
}
