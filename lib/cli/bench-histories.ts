/**
 * User histories for `cangen bench --sequence-model`: before the load, every bench user gets a
 * stored history (POST /v1/events) of the model's items; during it, a steady trickle of new events
 * makes some retrieves encode an appended event (a session step) or a slid window (a full run).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '../orchestration/random';

interface UserEvent {
  userId: string;
  item: string;
  action?: string;
  time: number;
}

/** The bench's user ids, as the load's requests name them. */
export const benchUser = (n: number): string => `u${n}`;

const firstTime = 1_700_000_000;

async function post(base: string, token: string, events: UserEvent[]): Promise<void> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  const response = await fetch(`${base}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
  if (!response.ok) throw new Error(`POST /v1/events answered ${response.status}: ${await response.text()}`);
}

async function vocabulary(modelDir: string): Promise<{ items: string[]; actions: string[] }> {
  const lines = async (name: string) => (await readFile(join(modelDir, name), 'utf8').catch(() => '')).split('\n').filter((l) => l.length > 0);
  return { items: await lines('items.txt'), actions: await lines('actions.txt') };
}

export interface HistoryLoad {
  /** Events stored before the load. */
  seeded: number;
  /** Starts posting `rate` events a second (one a request, to random users) until stop() resolves. */
  trickle(rate: number): { stop(): Promise<number> };
}

/**
 * Gives users 0..users-1 between half and all of `length` events each (the model's items, at
 * random from a fixed seed, a minute apart), in batches of at most `maxBatch`.
 */
export async function seedHistories(base: string, token: string, modelDir: string, users: number, length: number, maxBatch: number): Promise<HistoryLoad> {
  const { items, actions } = await vocabulary(modelDir);
  if (items.length === 0) throw new Error(`Expected item ids in ${join(modelDir, 'items.txt')}`);
  const random = seededRandom(17);
  const pick = <T>(values: T[]) => values[Math.floor(random() * values.length)]!;
  const event = (userId: string, time: number): UserEvent => ({ userId, item: pick(items), ...(actions.length ? { action: pick(actions) } : {}), time });
  const clock = new Map<string, number>();
  let batch: UserEvent[] = [];
  let seeded = 0;
  for (let u = 0; u < users; u++) {
    const userId = benchUser(u);
    const count = Math.ceil(length / 2 + random() * (length / 2));
    for (let e = 0; e < count; e++) {
      batch.push(event(userId, firstTime + 60 * e));
      if (batch.length === maxBatch) {
        await post(base, token, batch);
        seeded += batch.length;
        batch = [];
      }
    }
    clock.set(userId, firstTime + 60 * count);
  }
  if (batch.length > 0) await post(base, token, batch);
  seeded += batch.length;
  return {
    seeded,
    trickle(rate) {
      let posted = 0;
      let failure: unknown;
      const timer = rate > 0
        ? setInterval(() => {
            const userId = benchUser(Math.floor(random() * users));
            const time = clock.get(userId)! + 60;
            clock.set(userId, time);
            post(base, token, [event(userId, time)]).then(() => posted++, (error: unknown) => (failure ??= error));
          }, 1000 / rate)
        : undefined;
      return {
        async stop() {
          clearInterval(timer);
          if (failure) throw failure;
          return posted;
        },
      };
    },
  };
}
