import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, type AdAttributes, type AdIndexOptions, type BudgetState, type IndexKind } from '../lib';
import { clusteredVectors, recallAt } from './helpers/clustered';
import { rng, sequentialIds } from './helpers/random';
import { bruteForce } from './helpers/reference';

const filters = suite('filtered search: eligible ads only, recall held from 100% to 0.1% eligible');

const dim = 32;
const n = 20000;
const vectors = clusteredVectors(n, dim, 80, 5);
const ids = sequentialIds(n, 1);
const queries = clusteredVectors(10, dim, 80, 5).map((v, i) => v + 0.1 * Math.cos(i));
const budgets: BudgetState[] = ['available', 'limited', 'exhausted'];
const attributes: AdAttributes[] = Array.from({ length: n }, (_, i) => ({
  active: i % 10 !== 0,
  budget: budgets[i % 3],
  advertiser: i % 500,
  campaign: i % 2000,
  category: (i * 7) % 40,
  geo: i % 13,
}));

function subsetReference(keep: (i: number) => boolean, k: number) {
  const chosen: number[] = [];
  for (let i = 0; i < n; i++) if (keep(i)) chosen.push(i);
  const subIds = BigInt64Array.from(chosen, (i) => ids[i]!);
  const subVectors = new Float32Array(chosen.length * dim);
  chosen.forEach((i, r) => subVectors.set(vectors.subarray(i * dim, (i + 1) * dim), r * dim));
  return { count: chosen.length, reference: bruteForce('ip', subIds, subVectors, queries, dim, k) };
}

const kinds: { kind: IndexKind; options: Partial<AdIndexOptions>; recall: number }[] = [
  { kind: 'flat', options: {}, recall: 1 },
  { kind: 'ivf-flat', options: { nlist: 64, nprobe: 8 }, recall: 0.95 },
  { kind: 'ivf-pq', options: { nlist: 64, nprobe: 12, pqBytes: 8, rerank: 20 }, recall: 0.95 },
  { kind: 'hnsw', options: { hnswM: 16, efConstruction: 64, efSearch: 64 }, recall: 0.95 },
];

// Eligible fractions by id: 100%, 10%, 1%, 0.1%.
const selectivities = [1, 0.1, 0.01, 0.001];

for (const { kind, options, recall } of kinds) {
  filters(`${kind}: id-set filters at ${selectivities.join(', ')} of the corpus`, async () => {
    const index = new AdIndex({ dim, kind, ...options });
    if (!index.isTrained) await index.train(vectors.subarray(0, 12000 * dim));
    await index.upsert(ids, vectors, attributes);
    const next = rng(77);
    const line: string[] = [];
    for (const fraction of selectivities) {
      const chosen = new Set<number>();
      for (let i = 0; i < n; i++) if (next() < fraction) chosen.add(i);
      const { count, reference } = subsetReference((i) => chosen.has(i), 10);
      const filter = await index.filter({ ids: Array.from(chosen, (i) => ids[i]!) });
      assert.is(filter.count, count);
      const results = await index.search(queries, 10, { filter });
      for (const id of results.ids) if (id >= 0n) assert.ok(chosen.has(Number(id - 1n)), `ineligible ad ${id} returned`);
      const r = recallAt(results, reference);
      line.push(`${fraction * 100}%: ${r.toFixed(3)}`);
      assert.ok(r >= recall, `${kind} at ${fraction * 100}% eligible: recall ${r} < ${recall}`);
    }
    console.log(`  ${kind}: ${line.join('  ')}`);
    index.close();
  });
}

filters('attribute predicates compile to the right ads and are reused across writes', async () => {
  const index = new AdIndex({ dim, kind: 'hnsw', hnswM: 16 });
  await index.upsert(ids, vectors, attributes);
  const spec = { active: true, budget: ['available', 'limited'] as BudgetState[], categories: [3, 4, 5], geos: [1, 2], excludeAdvertisers: [11] };
  const keep = (i: number) => {
    const a = attributes[i]!;
    return a.active! && a.budget !== 'exhausted' && [3, 4, 5].includes(a.category!) && [1, 2].includes(a.geo!) && a.advertiser !== 11;
  };
  const filter = await index.filter(spec);
  const { count, reference } = subsetReference(keep, 20);
  assert.is(filter.count, count);
  const results = await index.search(queries, 20, { filter });
  for (const id of results.ids) if (id >= 0n) assert.ok(keep(Number(id - 1n)), `ad ${id} does not satisfy the filter`);
  assert.ok(recallAt(results, reference) >= 0.95);

  // The same compiled filter after a write: recompiled transparently, sees the change.
  const best = results.row(0).ids[0]!;
  await index.upsert([best], vectors.subarray(Number(best - 1n) * dim, Number(best) * dim), [{ ...attributes[Number(best - 1n)], active: false }]);
  const after = await index.search(queries.subarray(0, dim), 20, { filter });
  assert.not.ok(Array.from(after.ids).includes(best), 'an ad made inactive still passes the filter');

  // A filter description (not compiled) works too, and a filter from another index is refused.
  const inline = await index.search(queries, 5, { filter: { geos: [0] } });
  for (const id of inline.ids) if (id >= 0n) assert.is(attributes[Number(id - 1n)]!.geo, 0);
  const other = new AdIndex({ dim });
  await assert_rejects(other.search(queries, 5, { filter }), /compiled by this index/);
  await assert_rejects(index.filter({ geo: [1] } as never), /did you mean 'geos'/);
  await assert_rejects(index.filter({ budget: ['spent'] as never }), /'available', 'limited', 'exhausted'/);
});

async function assert_rejects(promise: Promise<unknown>, message: RegExp) {
  try {
    await promise;
  } catch (error) {
    assert.match((error as Error).message, message);
    return;
  }
  assert.unreachable('expected a rejection');
}

filters('setAttributes changes eligibility without touching embeddings; packed attributes load', async () => {
  const index = new AdIndex({ dim, kind: 'flat', metric: 'l2' });
  const m = 500;
  const packed = new Uint32Array(m * 6);
  for (let i = 0; i < m; i++) packed.set([1, 0, i % 5, 0, i % 3, 0], i * 6); // active, budget, advertiser, campaign, category, geo
  await index.upsert(ids.subarray(0, m), vectors.subarray(0, m * dim), packed);
  const filter = await index.filter({ categories: [1], active: true });
  assert.is(filter.count, Array.from({ length: m }, (_, i) => i).filter((i) => i % 3 === 1).length);
  const before = await index.search(queries, 5, { filter });
  const best = before.row(0).ids[0]!;
  assert.is(await index.setAttributes([best, 999_999n], [{ active: false, category: 1 }, { active: true }]), 1);
  const after = await index.search(queries, 5, { filter });
  assert.not.ok(Array.from(after.row(0).ids).includes(best), 'a paused ad still passes');
  assert.is(filter.count, before.queries > 0 ? Array.from({ length: m }, (_, i) => i).filter((i) => i % 3 === 1).length - 1 : 0);
  // The embedding is unchanged: unfiltered, the ad is still found where it was.
  const unfiltered = await index.search(vectors.subarray(Number(best - 1n) * dim, Number(best) * dim), 1);
  assert.is(unfiltered.ids[0], best);
  await assert_rejects(index.upsert([1], vectors.subarray(0, dim), new Uint32Array([2, 0, 0, 0, 0, 0])), /active 0 or 1/);
});

filters('an empty filter returns only padding', async () => {
  const index = new AdIndex({ dim });
  await index.upsert(ids.subarray(0, 100), vectors.subarray(0, 100 * dim));
  const r = await index.search(queries, 5, { filter: { ids: [] } });
  assert.equal(Array.from(r.counts), new Array(queries.length / dim).fill(0));
});

filters.run();
