/**
 * Re-throws a native rejection with the caller's stack, so the trace points at user code.
 * `caller` is an Error made at the call site; its stack is only formatted if something fails,
 * which keeps the success path cheap.
 */
export async function withCallerStack<T>(promise: Promise<T>, caller: Error): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const callerStack = caller.stack;
    if (error instanceof Error && callerStack) {
      error.stack = `${error.name}: ${error.message}\n${callerStack.split('\n').slice(2).join('\n')}`;
    }
    throw error;
  }
}
