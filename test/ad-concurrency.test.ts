import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, type IndexKind } from '../lib';
import { clusteredVectors } from './helpers/clustered';
import { sequentialIds } from './helpers/random';

const concurrency = suite('AdIndex: searches run while upserts, removes and compaction do');

for (const kind of ['flat', 'hnsw', 'ivf-flat'] as IndexKind[]) {
  concurrency(`${kind}: no torn reads, removed ads stay removed, final state exact`, async () => {
    const dim = 16;
    const n = 6000;
    const vectors = clusteredVectors(n, dim, 30, 3);
    const ids = sequentialIds(n, 1);
    const index = new AdIndex({ dim, kind, nlist: 32, nprobe: 8, hnswM: 8 });
    if (!index.isTrained) await index.train(vectors);
    await index.upsert(ids.subarray(0, 3000), vectors.subarray(0, 3000 * dim));
    const queries = vectors.subarray(0, 4 * dim);
    const removed = new Set<bigint>();
    const searches: Promise<void>[] = [];
    const launch = (filter?: { categories: number[] }) =>
      searches.push(
        index.search(queries, 20, filter ? { filter } : {}).then((r) => {
          assert.is(r.queries, 4);
          for (const id of r.ids) assert.ok(id === -1n || (id >= 1n && id <= BigInt(n)), `unknown id ${id}`);
        }),
      );
    for (let step = 0; step < 10; step++) {
      launch();
      launch({ categories: [0] });
      const from = 3000 + step * 300;
      const upsert = index.upsert(ids.subarray(from, from + 300), vectors.subarray(from * dim, (from + 300) * dim));
      launch();
      const victims = [ids[step * 10]!, ids[step * 10 + 1]!];
      victims.forEach((v) => removed.add(v));
      await Promise.all([upsert, index.remove(victims)]);
      if (step === 5) await Promise.all([index.compact(), (launch(), Promise.resolve())]);
    }
    await Promise.all(searches);
    assert.is(index.size, n - removed.size);
    const final = await index.search(vectors.subarray(0, 40 * dim), 50);
    for (const id of final.ids) assert.not.ok(removed.has(id), `removed ad ${id} came back`);
    index.close();
  });
}

concurrency.run();
