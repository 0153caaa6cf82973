/**
 * Re-throws a native rejection with the caller's stack, so the trace points at user code.
 *
 * The stack is taken when the rejection arrives, inside an async function: V8's async stack
 * traces then list every caller that awaited the call (`at async main (app.ts:12)`). Capturing
 * an Error at the call site instead would cost about 5 us on every call, success or not, which
 * was a third of a small search's time.
 */
export async function withCallerStack<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw withStackHere(error, withCallerStack);
  }
}

/**
 * `error` with the stack of the async function whose catch block calls this (frames above
 * `below` left out): for hot paths that await the native call themselves.
 */
export function withStackHere(error: unknown, below?: (...args: never[]) => unknown): unknown {
  if (error instanceof Error) {
    const here: { stack?: string } = {};
    Error.captureStackTrace(here, below ?? withStackHere);
    const stack = here.stack ?? '';
    const frames = stack.includes('\n') ? stack.slice(stack.indexOf('\n')) : '';
    error.stack = `${error.name}: ${error.message}${frames}`;
  }
  return error;
}
