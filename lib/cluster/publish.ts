/**
 * Publishing to a JetStream stream until it is stored. A publish that JetStream does not
 * acknowledge (no stream leader while a server fails over, a timeout) is retried for `retryForMs`;
 * every attempt carries the same message id, so a retry of a message that was stored after all is
 * de-duplicated by the stream (within its 2-minute duplicate window) rather than stored twice.
 */
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from 'nats';
import { ClusterError } from './errors';

export interface PublishRetry {
  retryForMs: number;
  /** What the message is, for the error ("a remove for shard 3"). */
  what: string;
  /** Called before each retry (counters). */
  onRetry?: () => void;
}

/** Resolves with the stream sequence the message was stored at; ERR_CLUSTER once retryForMs has passed. */
export async function publishStored(js: JetStreamClient, subject: string, payload: Uint8Array, retry: PublishRetry): Promise<number> {
  const msgID = randomUUID();
  const since = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return (await js.publish(subject, payload, { msgID })).seq;
    } catch (error) {
      if (Date.now() - since >= retry.retryForMs) {
        throw new ClusterError('ERR_CLUSTER', `JetStream did not store ${retry.what} on '${subject}' within ${retry.retryForMs} ms (${(error as Error).message}); ` +
          'messages acknowledged before it stay stored: retry the whole write (writes are idempotent), and check the JetStream servers');
      }
      retry.onRetry?.();
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
}
