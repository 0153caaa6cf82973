/** Shared by the cluster tests: one nats-server for a test, with what the test opened closed after it, and exact comparison of answers. */
import { connect, type NatsConnection } from 'nats';
import * as assert from 'uvu/assert';
import type { SearchResults } from '../../lib';
import { NatsDeployment } from './nats-server';

/** Same counts, ids and scores, rank by rank. */
export function assertIdentical(got: SearchResults, expected: SearchResults, label: string): void {
  assert.equal([...got.counts], [...expected.counts], `${label}: counts`);
  assert.equal([...got.ids], [...expected.ids], `${label}: ids`);
  assert.equal([...got.scores], [...expected.scores], `${label}: scores`);
}

export interface NatsScope {
  nats: NatsDeployment;
  nc: NatsConnection;
  /** Closes `resource` when the test ends, pass or fail, the last owned first. */
  own<T extends { close(): unknown }>(resource: T): T;
}

/** Runs `body` against a fresh single-node nats-server; closes what it owned, the connection and the server after. */
export async function withNats(body: (scope: NatsScope) => Promise<void>): Promise<void> {
  const nats = await NatsDeployment.single();
  const nc = await connect({ servers: nats.servers });
  const owned: { close(): unknown }[] = [];
  try {
    await body({ nats, nc, own: (resource) => (owned.push(resource), resource) });
  } finally {
    for (const resource of owned.reverse()) await resource.close();
    await nc.close();
    await nats.stop();
  }
}

/** Resolves once every JetStream stream has a cluster leader (a 3-node cluster elects them after the streams are made). */
export async function streamLeaders(nc: NatsConnection, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const jsm = await nc.jetstreamManager();
      const streams = await jsm.streams.list().next();
      if (streams.length > 0 && streams.every((s) => s.cluster?.leader)) return;
    } catch {
      // JetStream answers with timeouts while it elects: ask again.
    }
    if (Date.now() > until) throw new Error(`JetStream streams without a leader after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
