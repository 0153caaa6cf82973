import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, type AdAttributes, type EligibilityFilter, type IndexKind } from '../lib';
import { clusteredVectors } from './helpers/clustered';
import { admits, everyKind, randomAttributes } from './helpers/filters';
import { randomVectors, rng, sequentialIds } from './helpers/random';

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

type Corpus = Map<bigint, Required<AdAttributes>>;

/**
 * Linearizable enough: searches (unfiltered, with a compiled filter, with a one-off description)
 * race a known sequence of writes w1..wn (upserts new and replacing, removes, attribute changes,
 * compactions) applied one after another. A search that started after w_a was acknowledged and
 * finished before w_b started must match the state after some prefix i in [a, b - 1]: every ad it
 * returns live and eligible in that one state.
 */
for (const { kind, options } of everyKind(16)) {
  concurrency(`${kind}: every search answer is consistent with some prefix of the writes`, async () => {
    const dim = 8;
    const next = rng(99);
    const index = new AdIndex({ dim, kind, threads: 1, ...options });
    if (!index.isTrained) await index.train(randomVectors(1024, dim, 3));
    // The states after each prefix of the writes: states[i] after w1..wi.
    const states: Corpus[] = [new Map()];
    const initialIds = sequentialIds(400, 0);
    const initial = Array.from(initialIds, (id) => {
      const a = randomAttributes(next);
      states[0]!.set(id, a);
      return a;
    });
    await index.upsert(initialIds, randomVectors(400, dim, 4), initial);
    const writes: (() => Promise<unknown>)[] = [];
    let corpus: Corpus = new Map(states[0]);
    for (let w = 0; w < 40; w++) {
      corpus = new Map(corpus);
      const op = w % 10 === 9 ? 3 : Math.floor(next() * 3);
      if (op === 0) {
        const ids = Array.from(new Set(Array.from({ length: 20 }, () => BigInt(Math.floor(next() * 600)))));
        const attributes = ids.map((id) => {
          const a = randomAttributes(next);
          corpus.set(id, a);
          return a;
        });
        const vectors = randomVectors(ids.length, dim, 1000 + w);
        writes.push(() => index.upsert(ids, vectors, attributes));
      } else if (op === 1) {
        const ids = Array.from({ length: 15 }, () => BigInt(Math.floor(next() * 600)));
        ids.forEach((id) => corpus.delete(id));
        writes.push(() => index.remove(ids));
      } else if (op === 2) {
        const ids = Array.from(new Set(Array.from({ length: 30 }, () => BigInt(Math.floor(next() * 600)))));
        const attributes = ids.map(() => randomAttributes(next));
        ids.forEach((id, i) => corpus.has(id) && corpus.set(id, attributes[i]!));
        writes.push(() => index.setAttributes(ids, attributes));
      } else {
        writes.push(() => index.compact());
      }
      states.push(corpus);
    }
    const spec: EligibilityFilter = { active: true, categories: [0, 1], excludeAdvertisers: [2] };
    const compiled = await index.filter(spec);
    // acked[i]: when w_i was acknowledged (acked[0]: before everything); started[j]: when w_j began.
    const acked: number[] = [-Infinity];
    const started: number[] = [];
    const queries = randomVectors(2, dim, 7);
    type Observation = { from: number; to: number; ids: BigInt64Array; filtered: boolean };
    const observations: Observation[] = [];
    let writing = true;
    const searchLoop = async (mode: number) => {
      while (writing) {
        const start = performance.now();
        const filter = mode === 0 ? undefined : mode === 1 ? compiled : spec;
        const result = await index.search(queries, 15, { filter, threads: 1 });
        const end = performance.now();
        let a = 0;
        while (a + 1 < acked.length && acked[a + 1]! <= start) a++;
        let b = 1;
        while (b <= started.length && started[b - 1]! < end) b++;
        observations.push({ from: a, to: b - 1, ids: result.ids, filtered: filter !== undefined });
      }
    };
    const loops = [0, 1, 2, 0, 1, 2].map((mode) => searchLoop(mode));
    for (const write of writes) {
      started.push(performance.now());
      await write();
      acked.push(performance.now());
      await new Promise((resolve) => setImmediate(resolve)); // let searches start between writes
    }
    writing = false;
    await Promise.all(loops);
    assert.ok(observations.length >= 40, `only ${observations.length} searches ran`);
    const racing = observations.filter((o) => o.to > o.from).length;
    console.log(`  ${kind}: ${observations.length} searches, ${racing} of them overlapping a write`);
    for (const o of observations) {
      let consistent = false;
      for (let i = o.from; i <= Math.min(o.to, states.length - 1) && !consistent; i++) {
        const state = states[i]!;
        consistent = Array.from(o.ids).every((id) => id === -1n || (state.has(id) && (!o.filtered || admits(spec, id, state.get(id)!))));
      }
      assert.ok(consistent, `${kind}: a ${o.filtered ? 'filtered' : 'plain'} search during writes ${o.from}..${o.to} matches no prefix state`);
    }
    assert.equal(await index.eligibleIds(compiled), await index.eligibleIds(spec));
    index.close();
  });
}

concurrency.run();
