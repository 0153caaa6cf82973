/**
 * One driver per engine of the ANN benchmark: cangen's AdIndex (every kind, through its public
 * API), hnswlib-node's HierarchicalNSW and usearch's Index. Data convention as everywhere in
 * cangen: row-major n x dim Float32Array; the id of row i is i, so ids compare directly.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HierarchicalNSW } from 'hnswlib-node';
import { loadHnswlib } from '../drivers/hnswlib-module';
import { Index as UsearchIndex, MetricKind, ScalarKind } from 'usearch';
import { AdIndex, type AdIndexOptions, type AdSearchOptions } from '../../lib';
import type { Dataset } from '../drivers/driver';
import { rowIds } from '../drivers/ids';

/** One setting of an engine's search parameters (one point of its curve). */
export interface SweepPoint {
  /** e.g. 'ef=64', 'nprobe=16 rerank=4'. */
  label: string;
  efSearch?: number;
  nprobe?: number;
  rerank?: number;
}

export interface MemoryEstimate {
  bytesPerAd: number;
  /** How the number was obtained ('stats().bytesPerAd', 'layout estimate: ...'). */
  method: string;
}

export interface AnnDriver {
  /** Stable key (--kinds, JSON). */
  readonly key: string;
  /** Name in the table and the plot legend. */
  readonly label: string;
  /** cangen's own row (counts as "ours" in the goals). */
  readonly ours: boolean;
  /** Threads the build really uses. */
  readonly buildThreads: number;
  /** Threads a batched search really uses. */
  readonly batchThreads: number;
  /** Caveat for the notes. */
  readonly note?: string;
  /** Builds (trains, adds) the index over the corpus; may keep a reference to data.vectors. */
  build(data: Dataset): Promise<{ trainMs: number; addMs: number }>;
  /** Applies a sweep point before it is timed (usearch: reload with a new expansion). */
  prepare(point: SweepPoint): Promise<void>;
  /** Top-k of `nq` queries (nq x dim, byteOffset 0): nq x k ids, -1 padded. */
  search(queries: Float32Array, nq: number, k: number, threads: number, point: SweepPoint): Promise<BigInt64Array>;
  memory(): Promise<MemoryEstimate>;
  free(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// cangen AdIndex
// ---------------------------------------------------------------------------------------------

export interface CangenSpec {
  key: string;
  label: string;
  options: Omit<AdIndexOptions, 'dim' | 'threads' | 'metric'>;
  note?: string;
}

export function cangenDriver(spec: CangenSpec, threads: number, metric: 'l2' | 'ip'): AnnDriver {
  let index: AdIndex | undefined;
  return {
    key: spec.key,
    label: spec.label,
    ours: true,
    buildThreads: threads,
    batchThreads: threads,
    note: spec.note,
    async build(data: Dataset) {
      index = new AdIndex({ ...spec.options, dim: data.dim, metric, threads });
      let start = performance.now();
      if (!index.isTrained) {
        // nlist from the options, or from a factory string such as 'IVF4096,PQ48np'.
        const nlist = spec.options.nlist ?? Number(/IVF(\d+)/.exec(spec.options.factory ?? '')?.[1] ?? 1024);
        // 39 x nlist points for the centroids; PQ codebooks need at least 256 x 39.
        const rows = Math.min(data.n, Math.max(39 * nlist, 256 * 39));
        await index.train(data.vectors.subarray(0, rows * data.dim));
      }
      const trainMs = performance.now() - start;
      start = performance.now();
      const ids = rowIds(data.n);
      // Chunks keep the transient copies made while adding small.
      const chunk = 100_000;
      for (let i = 0; i < data.n; i += chunk) {
        const end = Math.min(data.n, i + chunk);
        await index.upsert(ids.subarray(i, end), data.vectors.subarray(i * data.dim, end * data.dim));
      }
      return { trainMs, addMs: performance.now() - start };
    },
    async prepare() {},
    async search(queries, _nq, k, searchThreads, point) {
      const options: AdSearchOptions = { threads: searchThreads };
      if (point.efSearch !== undefined) options.efSearch = point.efSearch;
      if (point.nprobe !== undefined) options.nprobe = point.nprobe;
      if (point.rerank !== undefined) options.rerank = point.rerank;
      return (await index!.search(queries, k, options)).ids;
    },
    async memory() {
      const s = await index!.stats();
      return { bytesPerAd: s.bytesPerAd, method: 'stats().bytesPerAd (vectors + index + id/attribute catalog)' };
    },
    async free() {
      index?.close();
      index = undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// hnswlib-node HierarchicalNSW
// ---------------------------------------------------------------------------------------------

/**
 * hnswlib 0.8 (hnswalg.h) per element: level-0 block (2M links + count + vector + label),
 * its linkLists_ pointer, element_levels_ entry, link_list_locks_ mutex, upper-level links
 * (expected 1/(M-1) levels of M links + count) and a label_lookup_ unordered_map node + bucket.
 */
export function hnswlibLayoutBytes(dim: number, m: number): number {
  const level0 = 2 * m * 4 + 4 + dim * 4 + 8;
  const upper = (m * 4 + 4) / (m - 1);
  return level0 + 8 + 4 + 40 + upper + 40;
}

export function hnswlibDriver(m: number, efConstruction: number, metric: 'l2' | 'ip'): AnnDriver {
  let index: HierarchicalNSW | undefined;
  let dim = 0;
  return {
    key: 'hnswlib',
    label: 'hnswlib-node HNSW',
    ours: false,
    buildThreads: 1,
    batchThreads: 1,
    note: `hnswlib-node 3.0.0 HierarchicalNSW M=${m} efConstruction=${efConstruction}: synchronous, one query per call, one thread (build and batches too)`,
    async build(data: Dataset) {
      dim = data.dim;
      const start = performance.now();
      index = new (loadHnswlib().HierarchicalNSW)(metric, dim);
      index.initIndex({ maxElements: data.n, m, efConstruction, randomSeed: 100 });
      const row = new Array<number>(dim);
      for (let i = 0; i < data.n; i++) {
        const base = i * dim;
        for (let j = 0; j < dim; j++) row[j] = data.vectors[base + j]!;
        index.addPoint(row, i);
      }
      return { trainMs: 0, addMs: performance.now() - start };
    },
    async prepare(point) {
      index!.setEf(point.efSearch ?? 64);
    },
    async search(queries, nq, k) {
      const out = new BigInt64Array(nq * k).fill(-1n);
      const query = new Array<number>(dim);
      for (let i = 0; i < nq; i++) {
        for (let j = 0; j < dim; j++) query[j] = queries[i * dim + j]!;
        const { neighbors } = index!.searchKnn(query, k);
        for (let j = 0; j < neighbors.length && j < k; j++) out[i * k + j] = BigInt(neighbors[j]!);
      }
      return out;
    },
    async memory() {
      return {
        bytesPerAd: hnswlibLayoutBytes(dim, m),
        method: 'layout estimate from hnswalg.h (level-0 block, upper links, locks, label map)',
      };
    },
    async free() {
      index = undefined; // no explicit free: the harness runs the GC
    },
  };
}

// ---------------------------------------------------------------------------------------------
// usearch Index
// ---------------------------------------------------------------------------------------------

/** usearch's key -> slot lookup is not in its file: ~16 B entries in a table kept under ~70% full. */
const usearchLookupBytes = 24;

export function usearchDriver(
  connectivity: number,
  expansionAdd: number,
  threads: number,
  metric: 'l2' | 'ip',
  collect: () => void,
): AnnDriver {
  let index: UsearchIndex | undefined;
  let dir: string | undefined;
  let file: string | undefined;
  let n = 0;
  let dim = 0;
  let loadedEf = -1;
  const kind = metric === 'l2' ? MetricKind.L2sq : MetricKind.IP;
  const make = (ef: number) =>
    new UsearchIndex({
      dimensions: dim,
      metric: kind,
      quantization: ScalarKind.F32,
      connectivity,
      expansion_add: expansionAdd,
      expansion_search: ef,
      multi: false,
    });
  return {
    key: 'usearch',
    label: 'usearch HNSW',
    ours: false,
    buildThreads: threads,
    batchThreads: threads,
    note:
      `usearch 2.25.3 Index connectivity=${connectivity} expansion_add=${expansionAdd}, f32; no setter for the ` +
      'search expansion, so each ef is a save() then load() into an Index built with that expansion (not timed)',
    async build(data: Dataset) {
      if (data.vectors.byteOffset !== 0) throw new Error('usearch needs a corpus at byteOffset 0');
      n = data.n;
      dim = data.dim;
      const start = performance.now();
      index = make(64);
      const keys = new BigUint64Array(n);
      for (let i = 0; i < n; i++) keys[i] = BigInt(i);
      index.add(keys, data.vectors, threads);
      const addMs = performance.now() - start;
      dir = mkdtempSync(join(tmpdir(), 'cangen-ann-usearch-'));
      file = join(dir, 'index.usearch');
      index.save(file);
      loadedEf = 64;
      return { trainMs: 0, addMs };
    },
    async prepare(point) {
      const ef = point.efSearch ?? 64;
      if (ef === loadedEf) return;
      index = undefined;
      collect(); // let the previous copy go before loading the next
      const fresh = make(ef);
      fresh.load(file!);
      index = fresh;
      loadedEf = ef;
    },
    async search(queries, nq, k, searchThreads) {
      if (queries.byteOffset !== 0) throw new Error('usearch needs slice()d queries (it ignores byteOffset)');
      const out = new BigInt64Array(nq * k).fill(-1n);
      if (nq === 1) {
        const keys = index!.search(queries, k, searchThreads).keys;
        for (let j = 0; j < keys.length && j < k; j++) out[j] = BigInt.asIntN(64, keys[j]!);
        return out;
      }
      const result = index!.search(queries, k, searchThreads) as unknown as {
        keys: BigUint64Array;
        counts: BigUint64Array;
      };
      for (let i = 0; i < nq; i++) {
        const count = Number(result.counts[i]!);
        for (let j = 0; j < count && j < k; j++) out[i * k + j] = BigInt.asIntN(64, result.keys[i * k + j]!);
      }
      return out;
    },
    async memory() {
      const fileBytes = statSync(file!).size;
      return {
        bytesPerAd: fileBytes / n + usearchLookupBytes,
        method: `layout estimate: saved file size (${(fileBytes / n).toFixed(0)} B/ad: vectors + graph + keys) + ~${usearchLookupBytes} B key lookup`,
      };
    },
    async free() {
      index = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
      file = undefined;
    },
  };
}
