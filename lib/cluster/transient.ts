/**
 * Retrying JetStream calls through a failover. While a JetStream cluster elects a new leader (a
 * few seconds after a server dies) its API answers with timeouts or "no responders"; a process
 * starting then should wait it out rather than exit. cangen's own errors (no shard map, a map that
 * disagrees) are not transient and are thrown at once.
 */
import { CangenError } from '../errors';

/** A NATS error that a retry a little later may not see: a timeout, no responders, a connection being re-established. */
export function isTransient(error: unknown): boolean {
  if (error instanceof CangenError) return false;
  const code = String((error as { code?: unknown })?.code ?? '');
  // 'no suitable peers': a JetStream cluster that has just formed does not know all its servers yet
  // (with more replicas asked for than servers exist, the retries end with the same message).
  return code === 'TIMEOUT' || code === '503' || code === 'DISCONNECT' || /timeout|no responders|leader|not ready|no suitable peers/i.test(String((error as Error)?.message));
}

/** Runs `call` until it succeeds, a non-transient error, or `timeoutMs` passes (then its last error). */
export async function retryTransient<T>(call: () => Promise<T>, timeoutMs: number, onRetry?: (error: Error) => void): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || Date.now() >= until) throw error;
      onRetry?.(error as Error);
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
}
