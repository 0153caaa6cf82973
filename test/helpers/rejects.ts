import * as assert from 'uvu/assert';

/** Asserts that `promise` (or the call) rejects with an error of this `code` whose message matches `pattern`. */
export async function rejects(promise: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    const e = error as { code?: string; message: string };
    assert.is(e.code, code, `code of: ${e.message}`);
    assert.match(e.message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}
