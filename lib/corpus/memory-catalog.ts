/**
 * The catalog of an engine that keeps nothing on disk: sequences are counted so that snapshots,
 * metrics and the write path are the same as with a durable catalog, and nothing can be replayed.
 */
import type { AdCatalog, CatalogBatch, CatalogStats } from './catalog';

export class MemoryCatalog implements AdCatalog {
  readonly durable = false;
  private headSeq = 0;

  head(): number {
    return this.headSeq;
  }

  commit(_batch: CatalogBatch): number {
    return ++this.headSeq;
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
