import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, LearnedScorer, limits, type AdIndexOptions, type IndexKind, type SearchResults } from '../lib';
import { clusteredVectors } from './helpers/clustered';
import { randomVectors, sequentialIds } from './helpers/random';
import { rejects } from './helpers/rejects';
import { randomTensors, writeModel, type Config } from './helpers/scorer-model';

// The fast path (bindings/inline_work.h): a search whose estimated work is under the inline
// budget runs on the main thread, counted by limits().inlineCalls as the call is made.
// CANGEN_INLINE_MACS=0 turns it off.
const fast = suite('the fast path for tiny calls: same answers, same errors, only when nothing can block');

async function withFastPath<T>(on: boolean, run: () => Promise<T>): Promise<T> {
  const saved = process.env.CANGEN_INLINE_MACS;
  if (on) delete process.env.CANGEN_INLINE_MACS;
  else process.env.CANGEN_INLINE_MACS = '0';
  try {
    return await run();
  } finally {
    if (saved === undefined) delete process.env.CANGEN_INLINE_MACS;
    else process.env.CANGEN_INLINE_MACS = saved;
  }
}

/** Whether `call` ran on the main thread (the fast path), and its Promise. */
function counted<T>(call: () => Promise<T>): { inline: boolean; promise: Promise<T> } {
  const before = limits().inlineCalls;
  const promise = call();
  return { inline: limits().inlineCalls > before, promise };
}

/** The search made with the fast path off and on: both answers, and whether each ran inline. */
async function bothWays(search: () => Promise<SearchResults>) {
  const run = async () => {
    const { inline, promise } = counted(search);
    return { inline, result: await promise };
  };
  return { off: await withFastPath(false, run), on: await withFastPath(true, run) };
}

function assertSameResults(a: SearchResults, b: SearchResults, what: string) {
  assert.equal(Array.from(a.ids), Array.from(b.ids), `${what}: ids`);
  assert.equal(Array.from(a.scores), Array.from(b.scores), `${what}: scores`);
  assert.equal(Array.from(a.counts), Array.from(b.counts), `${what}: counts`);
}

const dim = 32;
const n = 10_000;
const vectors = clusteredVectors(n, dim, 40, 3);
const ids = sequentialIds(n, 500);
const queries = randomVectors(300, dim, 4);

// Each small enough for the default budget at one query (flat: 10,000 x 32 = 320k multiply-adds).
const kinds: { kind: IndexKind; options: Partial<AdIndexOptions> }[] = [
  { kind: 'flat', options: {} },
  { kind: 'ivf-flat', options: { nlist: 32, nprobe: 4 } },
  { kind: 'ivf-sq8', options: { nlist: 32, nprobe: 4 } },
  { kind: 'ivf-pq', options: { nlist: 32, nprobe: 4, pqBytes: 8, rerank: 4 } },
  { kind: 'hnsw', options: { hnswM: 16, efConstruction: 64, efSearch: 32 } },
];

async function build(kind: IndexKind, options: Partial<AdIndexOptions>): Promise<AdIndex> {
  const index = new AdIndex({ dim, kind, ...options });
  if (!index.isTrained) await index.train(vectors);
  await index.upsert(ids, vectors);
  return index;
}

for (const { kind, options } of kinds) {
  fast(`${kind}: one query runs inline with the worker's answer; a large batch still goes to a worker`, async () => {
    const index = await build(kind, options);
    for (let q = 0; q < 5; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      const { off, on } = await bothWays(() => index.search(query, 10));
      assert.not.ok(off.inline, 'with CANGEN_INLINE_MACS=0 the search went to a worker');
      assert.ok(on.inline, `${kind}: a one-query search ran inline`);
      assertSameResults(off.result, on.result, `${kind} query ${q}`);
    }
    // 300 queries are far over the budget: to a worker, whatever the setting.
    const { off, on } = await bothWays(() => index.search(queries, 10));
    assert.not.ok(on.inline, `${kind}: a 300-query batch went to a worker`);
    assertSameResults(off.result, on.result, `${kind} batch`);
    // A filter compiled on the index: priced by the share it keeps, answers unchanged.
    const filter = await index.filter({ ids: ids.subarray(0, 3000) });
    const filtered = await bothWays(() => index.search(queries.subarray(0, dim), 10, { filter }));
    assertSameResults(filtered.off.result, filtered.on.result, `${kind} filtered`);
    index.close();
  });
}

fast('an error raised inside an inline search rejects with the same typed error as from a worker', async () => {
  const index = await build('ivf-flat', { nlist: 32, nprobe: 4 });
  // A cancel word raised before the call: the native search stops at its first check.
  const handle = (index as unknown as { handle: { search: (...args: unknown[]) => Promise<unknown> } }).handle;
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  cancel[0] = 1;
  for (const on of [false, true]) {
    await withFastPath(on, async () => {
      const { inline, promise } = counted(() => handle.search(queries.slice(0, dim), 10, 0, 0, -1, 0, 0, 0, cancel, null));
      assert.is(inline, on, `ran inline: ${on}`);
      await rejects(promise, 'ERR_ABORTED', /./);
    });
  }
  index.close();
});

fast('while a write is queued or running, searches go to a worker (they would wait for its lock) and see it', async () => {
  const index = await build('ivf-flat', { nlist: 32, nprobe: 4 });
  const far = new Float32Array(dim).fill(30);
  await withFastPath(true, async () => {
    const write = index.upsert([77n], far);
    const during = counted(() => index.search(far, 1));
    assert.not.ok(during.inline, 'a search made while an upsert is in flight went to a worker');
    await write;
    assert.is((await during.promise).ids[0], 77n, 'the search queued after the upsert saw it');
    const after = counted(() => index.search(far, 1));
    assert.ok(after.inline, 'once the write has finished the fast path is back');
    assert.is((await after.promise).ids[0], 77n);
  });
  index.close();
});

fast('an inline search settles on the next turn of the event loop: a loop awaiting only them does not starve it', async () => {
  const index = await build('ivf-flat', { nlist: 32, nprobe: 4 });
  const query = queries.subarray(0, dim);
  await withFastPath(true, async () => {
    let turned = false;
    setImmediate(() => (turned = true));
    const before = limits().inlineCalls;
    let searches = 0;
    while (!turned && searches < 10_000) {
      await index.search(query, 10);
      searches++;
    }
    assert.ok(turned, `the setImmediate callback ran (after ${searches} searches)`);
    assert.ok(searches <= 2, `it ran after ${searches} searches`);
    assert.is(limits().inlineCalls - before, searches, 'every search ran inline');
  });
  index.close();
});

const model: Config = {
  kind: 'mol', userDim: 16, itemDim: 16, heads: ['click', 'conversion'],
  mol: { queryComponents: 4, itemComponents: 4, componentDim: 8, gatingWidth: 16, temperature: 0.2 },
  scenarios: { home: { click: 1, conversion: 0.5 } }, defaultScenario: 'home',
};

fast('scorer: re-ranking a short candidate list runs inline with the same answer; a full scan does not', async () => {
  const scorer = await LearnedScorer.load(writeModel(model, randomTensors(model)));
  const adIds = sequentialIds(20_000, 1);
  await scorer.add(adIds, randomVectors(20_000, 16, 5));
  const users = randomVectors(1, 16, 6);
  const pairCost = scorer.info().flopsPerPair / 2;
  // As many candidates as fit a quarter of the default budget (5e5 multiply-adds).
  const count = Math.max(1, Math.floor(1.25e5 / pairCost));
  const candidates = adIds.filter((_, i) => i % 7 === 0).subarray(0, count);
  const short = await bothWays(() => scorer.search(users, 10, { candidates }));
  assert.not.ok(short.off.inline);
  assert.ok(short.on.inline, `${count} candidates at ${pairCost} multiply-adds each ran inline`);
  assertSameResults(short.off.result, short.on.result, 'candidates');
  const full = await bothWays(() => scorer.search(users, 10));
  assert.not.ok(full.on.inline, `a scan of 20,000 ads (${(20_000 * pairCost).toExponential(1)} multiply-adds) went to a worker`);
  assertSameResults(full.off.result, full.on.result, 'full scan');
  // A candidate that is not one of the scorer's ads: the same typed error either way.
  for (const on of [false, true]) {
    await withFastPath(on, async () => {
      const { inline, promise } = counted(() => scorer.search(users, 10, { candidates: BigInt64Array.of(999_999_999n) }));
      assert.is(inline, on, `ran inline: ${on}`);
      await rejects(promise, 'ERR_INVALID_ARGUMENT', /999999999/);
    });
  }
  scorer.close();
});

fast.run();
