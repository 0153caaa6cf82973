/**
 * An answer decided before the request body was read (413 for a declared length over the limit,
 * 401 or 403 from the token check, 415) must still reach a client that writes its whole body
 * before reading (Node's fetch does): a server that answers and closes with unread data sends a
 * TCP reset, and a client still writing sees EPIPE instead of the answer. So the rest of the body
 * is read and dropped first, and the answer follows; a client that keeps sending past `maxBytes`
 * or `maxMs` is cut off.
 */
import type { IncomingMessage } from 'node:http';

/** Resolves once the body has been read to its end, or the connection was cut. */
export function discardBody(raw: IncomingMessage, maxBytes: number, maxMs: number): Promise<void> {
  if (raw.complete || raw.destroyed || !raw.socket || raw.socket.destroyed) return Promise.resolve();
  const socket = raw.socket;
  return new Promise((resolve) => {
    let dropped = 0;
    const cut = () => {
      socket.destroy();
      done();
    };
    const timer = setTimeout(cut, maxMs).unref();
    const onData = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > maxBytes) cut();
    };
    function done() {
      clearTimeout(timer);
      raw.removeListener('data', onData);
      raw.removeListener('end', done);
      socket.removeListener('close', done);
      resolve();
    }
    raw.on('data', onData);
    raw.once('end', done);
    socket.once('close', done);
    raw.resume();
  });
}
