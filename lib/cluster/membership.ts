/**
 * Membership: each replica keeps an entry in the cluster's members KV bucket (key
 * 'shard.<shard>.<replicaId>') and rewrites it every heartbeat; the bucket's TTL removes the entry
 * of a replica that stops refreshing (a crash), and a replica that stops cleanly deletes its own.
 * Routers watch the bucket and keep the entries seen within the TTL.
 */
import type { KV, KvEntry, NatsConnection, QueuedIterator } from 'nats';
import { clusterNames } from './names';

export type ReplicaHealth = 'catching-up' | 'serving' | 'stopping';

export interface MemberEntry {
  replicaId: string;
  shard: number;
  /** Where the replica answers shard searches (request-reply). */
  subject: string;
  /** The last log sequence of its shard the replica has applied. */
  applied: number;
  health: ReplicaHealth;
  /** Searches the replica was answering when it wrote this entry. */
  inflight: number;
  /** Log messages of its shard stored and not yet applied. */
  lagMessages: number;
  deadLetters: number;
  /** The learned scorer the replica ranks with, when it has one (routers check users against userDim). */
  scorer?: { kind: string; userDim: number; heads: readonly string[]; scenarios: readonly string[] };
  /** The replica's clock when it wrote the entry (ms since the epoch): for people reading the bucket. */
  updatedAt: number;
}

export function memberKey(shard: number, replicaId: string): string {
  return `shard.${shard}.${replicaId}`;
}

export async function membersBucket(nc: NatsConnection, cluster: string): Promise<KV> {
  return nc.jetstream().views.kv(clusterNames(cluster).membersBucket, { bindOnly: true });
}

/** A replica's own entry: written at once, then every `intervalMs` and whenever refresh() is called. */
export class MemberRegistration {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly kv: KV, private readonly entry: () => MemberEntry, private readonly intervalMs: number, private readonly log: (line: string) => void) {}

  async start(): Promise<void> {
    await this.write();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  /** Rewrites the entry now (after a change of health); writes are serialised, failures logged and retried at the next beat. */
  refresh(): Promise<void> {
    this.writing = this.writing.then(() => this.write()).catch((error: Error) => this.log(`membership refresh failed: ${error.message}`));
    return this.writing;
  }

  private async write(): Promise<void> {
    const e = this.entry();
    await this.kv.put(memberKey(e.shard, e.replicaId), new TextEncoder().encode(JSON.stringify(e)));
  }

  /** Stops refreshing and deletes the entry, so routers stop choosing this replica at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    const e = this.entry();
    await this.kv.delete(memberKey(e.shard, e.replicaId)).catch((error: Error) => this.log(`membership delete failed: ${error.message}`));
  }
}

interface SeenEntry {
  entry: MemberEntry;
  /** This process's clock when the entry arrived: freshness never depends on another machine's clock. */
  seenAt: number;
}

/** A router's live view of the members bucket. */
export class MembershipView {
  private readonly entries = new Map<string, SeenEntry>();
  private readonly done: Promise<void>;

  private constructor(private readonly watch: QueuedIterator<KvEntry>, private readonly ttlMs: number) {
    this.done = this.follow();
  }

  static async watch(nc: NatsConnection, cluster: string, ttlMs: number): Promise<MembershipView> {
    const kv = await membersBucket(nc, cluster);
    return new MembershipView(await kv.watch({ key: 'shard.>' }), ttlMs);
  }

  private async follow(): Promise<void> {
    for await (const e of this.watch) {
      if (e.operation !== 'PUT') {
        this.entries.delete(e.key);
        continue;
      }
      try {
        this.entries.set(e.key, { entry: JSON.parse(new TextDecoder().decode(e.value)) as MemberEntry, seenAt: Date.now() });
      } catch {
        this.entries.delete(e.key); // not a cangen entry: ignored
      }
    }
  }

  /** Entries of a shard refreshed within the TTL (any health). */
  members(shard: number): MemberEntry[] {
    const now = Date.now();
    const out: MemberEntry[] = [];
    for (const { entry, seenAt } of this.entries.values()) {
      if (entry.shard === shard && now - seenAt <= this.ttlMs) out.push(entry);
    }
    return out;
  }

  async close(): Promise<void> {
    this.watch.stop();
    await this.done;
  }
}
