/**
 * Inputs of async native calls, made safe to read off the main thread. A worker must not read
 * the caller's memory after the call returns: the caller may transfer the buffer or resize it
 * while the promise is pending. The addon copies arrays up to `syncCopyBytes` as the call is made
 * (bindings/arrays.h). Larger ones are copied here first, into arrays only this call holds, in
 * slices between which the event loop runs: one synchronous copy of a 1M x 64 add (256 MB) blocks
 * it for 0.1 s to over 1 s. The copy goes into memory allocated and touched on a worker, so the
 * main thread pays no page faults; a buffer that is transferred or shrunk before the copy is done
 * rejects the call with InvalidArgumentError.
 */
import { InvalidArgumentError } from './errors';
import { native } from './native';

/** Must equal kSyncCopyBytes in bindings/arrays.h. */
export const syncCopyBytes = 2 ** 20;
const sliceBytes = 2 ** 20;

type Input = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint32Array | null;

/**
 * Starts a native call on `inputs`: at once when all are small (the addon copies them), otherwise
 * once all are copied here (the first slice of each before anything waits).
 * Call it before the calling method awaits anything, so that no input can change in between.
 */
export function withPrivateInputs<A extends Input[], R>(inputs: [...A], names: string[], start: (...inputs: A) => Promise<R>): Promise<R> {
  if (inputs.every((a) => a === null || a.byteLength <= syncCopyBytes)) return start(...(inputs as A));
  const copies = inputs.map((a, i) => (a === null ? a : slicedCopy(a, names[i]!)));
  return Promise.all(copies).then((ready) => start(...(ready as unknown as A)));
}

async function slicedCopy<T extends NonNullable<Input>>(input: T, name: string): Promise<T> {
  const length = input.length;
  // Memory touched on a worker: page faults of fresh memory cost the main thread ~4 ms per MiB on a VM.
  const memory = await native().privateBuffer(input.byteLength);
  const copy = new (input.constructor as new (buffer: ArrayBuffer) => T)(memory);
  const step = sliceBytes / input.BYTES_PER_ELEMENT;
  for (let at = 0; at < length; at += step) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    if (input.length !== length) {
      throw new InvalidArgumentError(
        `Expected ${name} (${length * input.BYTES_PER_ELEMENT} bytes, copied in slices above ${syncCopyBytes}) to stay in place until cangen had copied it, but its buffer was transferred or resized`,
      );
    }
    copy.set(input.subarray(at, Math.min(length, at + step)) as never, at);
  }
  return copy;
}
