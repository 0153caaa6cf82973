/**
 * What stands between POST /v1/feedback and the learned state (popularity, quotas), which moves
 * with every event and persists: request ids must carry the service's signature and be younger
 * than maxAgeMs, each (request, ad, type) counts once, and each client has an events-per-second
 * budget.
 */
import { RequestIdSigner } from './request-ids';
import { ClientBuckets } from '../orchestration/token-bucket';

export interface FeedbackLimits {
  /** HMAC secret of request ids; undefined: random per process. */
  secret: string | undefined;
  maxAgeMs: number;
  /** Events per second per client, and how many may be saved up. */
  rate: number;
  burst: number;
  /** (request, ad, type) triples remembered to refuse repeats (the oldest are dropped past it). */
  dedupeSize: number;
}

export type RejectReason = 'bad_signature' | 'expired' | 'duplicate';

/** Remembers keys for `ttlMs`, at most `capacity` of them (oldest first out): true the first time a key is added. */
export class RecentKeys {
  private readonly expiries = new Map<string, number>();
  /** Keys dropped for room before they expired (a repeat of one would be taken as new). */
  evicted = 0;

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.expiries.size;
  }

  add(key: string): boolean {
    const t = this.now();
    // Insertion order is expiry order (one ttl for all): expired keys are at the front.
    for (const [k, expiry] of this.expiries) {
      if (expiry > t) break;
      this.expiries.delete(k);
    }
    if (this.expiries.has(key)) return false;
    if (this.expiries.size >= this.capacity) {
      this.expiries.delete(this.expiries.keys().next().value!);
      this.evicted++;
    }
    this.expiries.set(key, t + this.ttlMs);
    return true;
  }
}

export class FeedbackGuard {
  readonly signer: RequestIdSigner;
  private readonly seen: RecentKeys;
  private readonly clients: ClientBuckets;

  constructor(limits: FeedbackLimits) {
    this.signer = new RequestIdSigner(limits.secret, limits.maxAgeMs);
    this.seen = new RecentKeys(limits.dedupeSize, limits.maxAgeMs);
    this.clients = new ClientBuckets(limits.rate, limits.burst);
  }

  /** Takes `events` from the client's budget; returns 0 when it had them, else the seconds to wait. */
  admit(client: string, events: number): number {
    const bucket = this.clients.get(client);
    return bucket.take(events) ? 0 : Math.max(1, Math.ceil(bucket.waitSeconds(events)));
  }

  /** The pipeline's request id behind a signed one, or why the event is refused. */
  check(signedId: string, adId: bigint, type: string): { id: string } | { reason: RejectReason } {
    const verified = this.signer.verify(signedId);
    if (!verified.ok) return { reason: verified.reason };
    return this.seen.add(`${verified.id} ${adId} ${type}`) ? { id: verified.id } : { reason: 'duplicate' };
  }
}
