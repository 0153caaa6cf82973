/**
 * One holder at a time for a cluster-wide job (who snapshots a shard, who applies the catalog to
 * the shard logs), chosen by compare-and-set on a key of the config bucket, not by any election
 * of our own. The holder renews its lease while it works; when it stops renewing (a crash, a long
 * pause), the lease expires and the next process to ask takes it with a compare-and-set on the
 * revision it read, so two cannot both take an expired lease. Expiry compares the holder's clock
 * with the reader's: clocks need only agree to well within the lease.
 */
import type { KV } from 'nats';

interface LeaseValue {
  replicaId: string;
  /** ms since the epoch, the holder's clock. */
  expiresAt: number;
}

export function snapshotLeaseKey(shard: number): string {
  return `snapshot-lease.${shard}`;
}

/** The key of the catalog applier's lease (lib/cluster/catalog-applier.ts). */
export const catalogApplierLeaseKey = 'catalog-applier-lease';

export class KvLease {
  constructor(private readonly kv: KV, private readonly key: string, private readonly replicaId: string, private readonly leaseMs: number) {}

  /** Takes or renews the lease; false when another holder has an unexpired one or won the race. */
  async acquire(): Promise<boolean> {
    const key = this.key;
    const value = new TextEncoder().encode(JSON.stringify({ replicaId: this.replicaId, expiresAt: Date.now() + this.leaseMs } satisfies LeaseValue));
    const current = await this.kv.get(key);
    try {
      if (!current || current.operation !== 'PUT') {
        await this.kv.create(key, value); // fails when another replica created it first
        return true;
      }
      const held = parseLease(current.value);
      if (held && held.replicaId !== this.replicaId && held.expiresAt > Date.now()) return false;
      await this.kv.update(key, value, current.revision); // fails when it changed since it was read
      return true;
    } catch (error) {
      if (/wrong last sequence|key exists/i.test((error as Error).message)) return false;
      throw error;
    }
  }

  /** Gives the lease up when this process holds it (a clean stop), so another can take it at once. */
  async release(): Promise<void> {
    const key = this.key;
    const current = await this.kv.get(key);
    if (current?.operation === 'PUT' && parseLease(current.value)?.replicaId === this.replicaId) {
      await this.kv.delete(key, { previousSeq: current.revision }).catch(() => undefined);
    }
  }
}

function parseLease(bytes: Uint8Array): LeaseValue | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as LeaseValue;
    return typeof v.replicaId === 'string' && Number.isFinite(v.expiresAt) ? v : undefined;
  } catch {
    return undefined;
  }
}
