/**
 * A deterministic stream of corpus writes, batch n computed from n alone, and a reference model
 * that applies it: the crash test's independent account of what an acknowledged prefix holds.
 */
import { seededRandom } from '../../lib/orchestration/random';

export const crashDim = 8;
const idSpace = 300;

export type CrashBatch =
  | { kind: 'upsert'; ads: { id: bigint; embedding: Float32Array; advertiserId: string; campaignId: string; category: string }[] }
  | { kind: 'remove'; ids: bigint[] }
  | { kind: 'budget'; budgets: { campaignId: string; budget: number }[] };

export function batchOf(n: number): CrashBatch {
  const random = seededRandom(1000 + n);
  const pick = () => BigInt(1 + Math.floor(random() * idSpace));
  const r = random();
  if (r < 0.2 && n > 5) return { kind: 'remove', ids: [...new Set(Array.from({ length: 3 }, pick))] };
  if (r < 0.3) return { kind: 'budget', budgets: [{ campaignId: `c${n % 4}`, budget: n % 3 === 0 ? 0 : 100 }] };
  const ids = [...new Set(Array.from({ length: 6 }, pick))];
  return {
    kind: 'upsert',
    ads: ids.map((id) => ({
      id,
      embedding: Float32Array.from({ length: crashDim }, () => random() * 2 - 1),
      advertiserId: `batch${n}`,
      campaignId: `c${Number(id) % 4}`,
      category: `k${n % 5}`,
    })),
  };
}

export interface ModelAd {
  embedding: Float32Array;
  advertiserId: string;
  campaignId: string;
  category: string;
}

/** What the corpus must hold after batches 0..n-1: ads by id and campaign budgets. */
export class CrashModel {
  readonly ads = new Map<bigint, ModelAd>();
  readonly budgets = new Map<string, number>();
  applied = 0;

  apply(batch: CrashBatch): void {
    if (batch.kind === 'upsert') for (const { id, ...ad } of batch.ads) this.ads.set(id, ad);
    else if (batch.kind === 'remove') for (const id of batch.ids) this.ads.delete(id);
    else for (const b of batch.budgets) this.budgets.set(b.campaignId, b.budget);
    this.applied++;
  }

  clone(): CrashModel {
    const copy = new CrashModel();
    for (const [id, ad] of this.ads) copy.ads.set(id, ad);
    for (const [c, b] of this.budgets) copy.budgets.set(c, b);
    copy.applied = this.applied;
    return copy;
  }
}
