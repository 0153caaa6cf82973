/**
 * Token buckets: `rate` tokens per second, at most `burst` saved up. One bucket is a budget (the
 * embedder's paid calls per second); `ClientBuckets` keeps one per client, bounded in number.
 */
export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updated = now();
  }

  /** Takes `n` tokens when there are that many; otherwise takes none. */
  take(n = 1): boolean {
    this.refill();
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }

  /** Seconds until `n` tokens will be there (0 when they are); Infinity when n exceeds the burst. */
  waitSeconds(n = 1): number {
    this.refill();
    if (n > this.burst) return Infinity;
    return n <= this.tokens ? 0 : (n - this.tokens) / this.rate;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.updated) / 1000) * this.rate);
    this.updated = t;
  }
}

/** One bucket per client key, the least recently seen dropped past `maxClients` (it comes back full). */
export class ClientBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxClients = 100_000,
  ) {}

  get(client: string): TokenBucket {
    let bucket = this.buckets.get(client);
    if (bucket) {
      this.buckets.delete(client);
    } else {
      bucket = new TokenBucket(this.rate, this.burst);
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(client, bucket);
    return bucket;
  }
}
