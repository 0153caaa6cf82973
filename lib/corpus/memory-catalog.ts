/**
 * The catalog of an engine that keeps nothing on disk: sequences are counted so that snapshots,
 * metrics and the write path are the same as with a durable catalog, and nothing can be replayed.
 */
import type { AdCatalog, CatalogBatch, CatalogStats } from './catalog';

export class MemoryCatalog implements AdCatalog {
  readonly durable = false;
  private headSeq = 0;
  private originSeq = 0;
  private readonly refused = new Set<number>();

  head(): number {
    return this.headSeq;
  }

  commit(batch: CatalogBatch): number {
    if (batch.origin !== undefined) this.originSeq = batch.origin;
    return ++this.headSeq;
  }

  origin(): number {
    return this.originSeq;
  }

  recordRefusal(origin: number): void {
    this.refused.add(origin);
    this.originSeq = origin;
  }

  wasRefused(origin: number): boolean {
    return this.refused.has(origin);
  }

  names() {
    return [];
  }

  campaigns() {
    return [];
  }

  presentAds(): Iterable<never[]> {
    return [];
  }

  changesSince(): Iterable<never[]> {
    return [];
  }

  sample(): Float32Array {
    return new Float32Array(0);
  }

  dropTombstones(): number {
    return 0;
  }

  stats(): CatalogStats {
    return { head: this.headSeq, bytes: 0 };
  }

  close(): void {}
}
