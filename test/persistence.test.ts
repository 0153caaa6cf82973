import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdIndex, CorruptFileError, IoError, UnsupportedFormatError, type AdIndexOptions, type IndexKind } from '../lib';
import { clusteredVectors } from './helpers/clustered';
import { sequentialIds } from './helpers/random';

const persistence = suite('save and load: round trip, atomic writes, clear errors on damage');

const dim = 16;
const n = 3000;
const vectors = clusteredVectors(n, dim, 20, 9);
const ids = sequentialIds(n, 500);
const queries = clusteredVectors(4, dim, 20, 9);
const attributes = Array.from({ length: n }, (_, i) => ({ category: i % 9, geo: i % 4, active: i % 5 !== 0 }));
const dir = mkdtempSync(join(tmpdir(), 'cangen-persist-'));

const kinds: { kind: IndexKind; options: Partial<AdIndexOptions> }[] = [
  { kind: 'flat', options: { metric: 'l2' } },
  { kind: 'ivf-flat', options: { nlist: 16 } },
  { kind: 'ivf-pq', options: { nlist: 16, pqBytes: 4, rerank: 4, metric: 'cosine' } },
  { kind: 'ivf-sq8', options: { nlist: 16 } },
  { kind: 'hnsw', options: { hnswM: 8 } },
  { kind: 'faiss', options: { factory: 'IVF16,PQ4' } },
];

async function built(kind: IndexKind, options: Partial<AdIndexOptions>) {
  const index = new AdIndex({ dim, kind, ...options });
  if (!index.isTrained) await index.train(vectors);
  await index.upsert(ids, vectors, attributes);
  await index.remove([ids[7]!, ids[8]!]);
  return index;
}

for (const { kind, options } of kinds) {
  persistence(`${kind}: a loaded index answers exactly as the saved one, filters included`, async () => {
    const index = await built(kind, options);
    const path = join(dir, `${kind}.cgn`);
    await index.save(path);
    const loaded = await AdIndex.load(path);
    assert.is(loaded.kind, kind);
    assert.is(loaded.dim, dim);
    assert.is(loaded.metric, index.metric);
    assert.is(loaded.size, n - 2);
    const filter = { categories: [2, 3], active: true };
    for (const options of [{}, { filter }]) {
      const a = await index.search(queries, 10, options);
      const b = await loaded.search(queries, 10, options);
      assert.equal(Array.from(b.ids), Array.from(a.ids));
      assert.equal(Array.from(b.scores), Array.from(a.scores));
    }
    const stats = await loaded.stats();
    assert.is(stats.deleted, 2);
    assert.equal(stats.options.kind, kind);
    // Writes after loading work as on the original.
    await loaded.upsert([ids[7]!], vectors.subarray(7 * dim, 8 * dim));
    assert.is(loaded.size, n - 1);
  });
}

persistence('damage at any offset gives CorruptFileError, never a crash or wrong answers', async () => {
  const index = await built('hnsw', { hnswM: 8 });
  const path = join(dir, 'good.cgn');
  await index.save(path);
  const good = readFileSync(path);
  const damaged = join(dir, 'damaged.cgn');
  const offsets = new Set<number>([0, 1, 7, 8, 12, 16, 23, 24, 30, good.length - 1, good.length - 4]);
  for (let i = 0; i < 40; i++) offsets.add(Math.floor((good.length * i) / 40));
  for (const offset of offsets) {
    writeFileSync(damaged, good.subarray(0, offset)); // truncated
    await assert_rejects(AdIndex.load(damaged), CorruptFileError, `truncated at ${offset}`);
    const flipped = Buffer.from(good);
    flipped[offset] = flipped[offset]! ^ 0x5a; // one byte changed
    writeFileSync(damaged, flipped);
    await assert_rejects(AdIndex.load(damaged), offset >= 8 && offset < 12 ? [CorruptFileError, UnsupportedFormatError] : CorruptFileError, `flipped at ${offset}`);
  }
  writeFileSync(damaged, Buffer.concat([good, Buffer.from([1, 2, 3])]));
  await assert_rejects(AdIndex.load(damaged), CorruptFileError, 'extended');
});

persistence('a file from a newer format version is refused clearly', async () => {
  const index = await built('flat', {});
  const path = join(dir, 'future.cgn');
  await index.save(path);
  const bytes = readFileSync(path);
  bytes.writeUInt32LE(99, 8);
  writeFileSync(path, bytes);
  try {
    await AdIndex.load(path);
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UnsupportedFormatError);
    assert.match((error as Error).message, /format version 99, written by a newer cangen/);
  }
});

persistence('a failed save leaves the previous file intact and no temporary file behind', async () => {
  const index = await built('flat', {});
  const path = join(dir, 'keep.cgn');
  await index.save(path);
  const before = readFileSync(path);
  await index.upsert([1], new Float32Array(dim).fill(1));
  await index.save(path); // overwrite works
  assert.not.equal(readFileSync(path), before);
  await assert_rejects(index.save(join(dir, 'missing-dir', 'x.cgn')), IoError, 'missing directory');
  await assert_rejects(AdIndex.load(join(dir, 'nope.cgn')), IoError, 'missing file');
  assert.ok(existsSync(path));
  assert.equal(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});

// CRC-32C (Castagnoli, reflected), written here independently of the native one.
const crcTable = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
function rechecksum(file: Buffer): void {
  let crc = 0xffffffff;
  for (let i = 0; i < file.length - 4; i++) crc = crcTable[(crc ^ file[i]!) & 0xff]! ^ (crc >>> 8);
  file.writeUInt32LE((crc ^ 0xffffffff) >>> 0, file.length - 4);
}

persistence('bits flipped past the checksum (CRC recomputed) load consistently or reject as corrupt, never crash', async () => {
  for (const kind of ['hnsw', 'ivf-flat'] as const) {
    const index = await built(kind, kinds.find((k) => k.kind === kind)!.options);
    const path = join(dir, `flipped-${kind}.cgn`);
    await index.save(path);
    const good = readFileSync(path);
    const damaged = join(dir, `flipped-${kind}-damaged.cgn`);
    let rejected = 0;
    for (let i = 0; i < 60; i++) {
      const offset = 24 + Math.floor(((good.length - 28) * i) / 60) + (i % 7);
      const flipped = Buffer.from(good);
      flipped[offset] = flipped[offset]! ^ (1 << (i % 8));
      rechecksum(flipped);
      writeFileSync(damaged, flipped);
      try {
        const loaded = await AdIndex.load(damaged);
        await loaded.search(queries, 10);
      } catch (error) {
        assert.instance(error, CorruptFileError, `${kind}: offset ${offset}: ${(error as Error).message}`);
        rejected++;
      }
    }
    assert.ok(rejected > 0, `${kind}: some flips are detected`);
  }
});

persistence('temporary files left by a killed save are removed by the next load', async () => {
  const index = await built('flat', {});
  const path = join(dir, 'killed.cgn');
  await index.save(path);
  const { spawnSync } = await import('node:child_process');
  const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
  const stale = `${path}.tmp-${deadPid}-0`;
  writeFileSync(stale, 'half a save');
  await AdIndex.load(path);
  assert.not.ok(existsSync(stale));
});

async function assert_rejects(promise: Promise<unknown>, classes: Function | Function[], what: string) {
  try {
    await promise;
  } catch (error) {
    const list = Array.isArray(classes) ? classes : [classes];
    assert.ok(list.some((c) => error instanceof c), `${what}: got ${(error as Error).name}: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: expected a rejection`);
}

persistence.after(() => rmSync(dir, { recursive: true, force: true }));
persistence.run();
