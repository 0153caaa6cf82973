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
