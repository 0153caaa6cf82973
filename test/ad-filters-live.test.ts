import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, type AdAttributes, type EligibilityFilter } from '../lib';
import { admits, everyKind, randomAttributes, sortedIds as sorted } from './helpers/filters';
import { randomVectors, rng } from './helpers/random';

/**
 * Compiled filters are kept current by the writes: after a random sequence of upserts (new and
 * replacing), removes, attribute changes and compactions, on every kind, a filter compiled at the
 * start admits exactly what the spec evaluated here in JavaScript admits over the attributes the
 * test wrote, and what a fresh compile admits; filtered searches return only live eligible ads;
 * and no search compiled a filter (stats().filterCompiles).
 */
const live = suite('compiled filters stay exact through every kind of write');

const dim = 8;

const specs: EligibilityFilter[] = [
  { active: true },
  { categories: [0, 2], budget: ['available', 'limited'] },
  { excludeAdvertisers: [1, 3], geos: [0, 1, 2] },
  { ids: [5n, 17n, 40n, 41n, 99n, 150n, 151n, 7777n] },
  { ids: [3n, 8n, 12n, 60n, 61n, 62n], active: false },
  { advertisers: [4], campaigns: [1, 2, 3, 4, 5] },
];

for (const { kind, options } of everyKind(8)) {
  live(`${kind}: long-lived filters equal the reference and a fresh compile after random writes`, async () => {
    const next = rng(1234);
    const index = new AdIndex({ dim, kind, threads: 1, ...options });
    if (!index.isTrained) await index.train(randomVectors(512, dim, 5));
    const corpus = new Map<bigint, Required<AdAttributes>>();
    const filters = await Promise.all(specs.map((s) => index.filter(s))); // compiled on the empty index
    const queries = randomVectors(3, dim, 9);
    let vectorSeed = 100;
    for (let step = 0; step < 50; step++) {
      const op = step < 3 ? 0 : Math.floor(next() * 10);
      if (op < 4) {
        const ids = sorted(new Set(Array.from({ length: 1 + Math.floor(next() * 25) }, () => BigInt(Math.floor(next() * 160)))));
        const attributes = ids.map((id) => {
          const a = randomAttributes(next);
          corpus.set(id, a);
          return a;
        });
        await index.upsert(BigInt64Array.from(ids), randomVectors(ids.length, dim, vectorSeed++), attributes);
      } else if (op < 6) {
        const ids = Array.from({ length: 8 }, () => BigInt(Math.floor(next() * 170)));
        ids.forEach((id) => corpus.delete(id));
        await index.remove(ids);
      } else if (op < 9) {
        const ids = sorted(new Set(Array.from({ length: 10 }, () => BigInt(Math.floor(next() * 170)))));
        const attributes = ids.map(() => randomAttributes(next));
        ids.forEach((id, i) => corpus.has(id) && corpus.set(id, attributes[i]!));
        await index.setAttributes(ids, attributes);
      } else {
        await index.compact();
      }
      assert.is(index.size, corpus.size, `step ${step}: size`);
      const compilesBefore = (await index.stats()).filterCompiles;
      for (let f = 0; f < specs.length; f++) {
        const where = `${kind} step ${step} filter ${JSON.stringify(specs[f], (_, v) => (typeof v === 'bigint' ? Number(v) : v))}`;
        const expected = sorted(Array.from(corpus).filter(([id, a]) => admits(specs[f]!, id, a)).map(([id]) => id));
        assert.equal(sorted(await index.eligibleIds(filters[f]!)), expected, where);
        assert.is(filters[f]!.count, expected.length, `${where}: count`);
        const results = await index.search(queries, 10, { filter: filters[f]! });
        const admitted = new Set(expected);
        for (const id of results.ids) assert.ok(id === -1n || admitted.has(id), `${where}: ineligible ad ${id} returned`);
      }
      assert.is((await index.stats()).filterCompiles, compilesBefore, `step ${step}: a search compiled a filter`);
      // A fresh compile (here through a description) admits the same ads.
      const f = step % specs.length;
      assert.equal(sorted(await index.eligibleIds(specs[f]!)), sorted(await index.eligibleIds(filters[f]!)), `step ${step}: fresh compile`);
    }
    assert.ok((await index.stats()).filterSlotUpdates > 0);
    index.close();
  });
}

live.run();
