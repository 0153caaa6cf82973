/** The durable corpus: restarts, all-or-nothing commits, cold-start ads, and the service's persistence. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdCorpus } from '../lib/corpus/ad-corpus';
import { CandidateEngine } from '../lib/orchestration/engine';
import type { Embedder } from '../lib/orchestration/embedders/embedder';
import { HashedNgramEmbedder } from '../lib/orchestration/embedders/hashed';
import { createService, loadConfig } from '../lib/service';
import { randomVectors } from './helpers/random';

const corpus = suite('durable corpus');
const dim = 4;

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'cangen-corpus-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

corpus('a batch the catalog refuses changes nothing: not the store, not the index, not the sequence', () =>
  withDir(async (dataDir) => {
    const c = await AdCorpus.open({ dim, dataDir, contentDim: 0 });
    try {
      await c.write({ upserts: [{ ad: { id: 1n }, embedding: Float32Array.of(1, 0, 0, 0) }] });
      const head = c.catalog.head();
      // NaN budgets violate the catalog's NOT NULL constraint: the whole transaction rolls back.
      const refused = await c.write({ upserts: [{ ad: { id: 2n }, embedding: Float32Array.of(0, 1, 0, 0) }, { ad: { id: 3n, budgetLeft: NaN } }] }).then(() => undefined, (e: unknown) => e);
      assert.is((refused as { code?: string })?.code, 'ERR_CATALOG');
      assert.is(c.catalog.head(), head);
      assert.is(c.store.size, 1);
      assert.is(c.behavioural.size, 1);
      await c.write({ removes: [1n] });
      assert.is(c.behavioural.size, 0, 'the corpus still takes writes');
    } finally {
      await c.close();
    }
  }),
);

corpus('an engine reopened on its data dir has every ad, attribute, budget and cold-start text vector, without calling the embedder again', () =>
  withDir(async (dataDir) => {
    let calls = 0;
    const hashed = new HashedNgramEmbedder({ dim: 32 });
    const embedder: Embedder = { dim: 32, name: 'counting', embed: (texts) => ((calls += texts.length), hashed.embed(texts)) };
    // Content alone in its scenario: the learned allocator may give it no slots in a mixed one.
    const options = { dim, dataDir, embedder, scenarios: [{ name: 's', generators: ['two-tower', 'content'] }, { name: 'cold', generators: ['content'] }] };
    const vectors = randomVectors(50, dim, 5);
    let engine = await CandidateEngine.open(options);
    await engine.upsertAds(Array.from({ length: 50 }, (_, i) => ({ id: BigInt(i + 1), embedding: vectors.slice(i * dim, (i + 1) * dim), advertiserId: `a${i % 3}`, geos: i % 2 ? ['fr'] : [], campaignId: `c${i % 5}` })));
    await engine.upsertAds([{ id: 100n, title: 'red running shoes', category: 'sport' }]);
    await engine.corpus.snapshot();
    // Changes after the snapshot: replayed on open.
    await engine.removeAds([1n, 2n]);
    await engine.upsertAds([{ id: 3n, active: false }, { id: 101n, title: 'blue kettle' }]);
    await engine.setCampaignBudgets([{ campaignId: 'c4', budget: 0 }]);
    await engine.upsertAds([{ id: 6n, budgetLeft: 10 }]);
    await engine.spend([{ id: 6n, amount: 1 }]);
    const described = (e: CandidateEngine) => [...e.store].map((a) => JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? String(v) : v === Infinity ? 'Infinity' : v))).sort();
    const before = { calls, size: engine.store.size, ads: described(engine) };
    const eligibleBefore = await engine.corpus.behavioural.eligibleIds({ active: true, budget: ['available'], geos: [0] });
    await engine.close();

    engine = await CandidateEngine.open(options);
    try {
      assert.is(calls, before.calls, 'no embedder call on open');
      assert.is(engine.store.size, before.size);
      assert.equal(described(engine), before.ads);
      assert.equal(await engine.corpus.behavioural.eligibleIds({ active: true, budget: ['available'], geos: [0] }), eligibleBefore, 'same eligibility, same name codes');
      assert.is(engine.corpus.behavioural.size, 48);
      assert.is(engine.corpus.content!.size, 2);
      const stats = engine.corpus.stats();
      assert.ok(stats.snapshotSeq > 0 && stats.replayLag === 5, JSON.stringify(stats));
      const found = await engine.retrieve({ userId: 'u', scenario: 'cold', k: 5, deadlineMs: 5000, features: { text: 'running shoes' } });
      assert.ok(found.candidates.some((c) => c.adId === 100n), `the cold ad is found by its text: ${JSON.stringify(found, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
      let owned: unknown;
      try {
        engine.store.upsert({ id: 7n });
      } catch (error) {
        owned = error;
      }
      assert.is((owned as { code?: string })?.code, 'ERR_STORE_OWNED', 'writes around the corpus are refused');
    } finally {
      await engine.close();
    }
  }),
);

corpus('the service keeps what PUT /v1/ads acknowledged across a restart, snapshots at shutdown and reports it', () =>
  withDir(async (dataDir) => {
    const token = 'a-token-of-sixteen-chars';
    const cfg = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim, dataDir, token, drainDelayMs: 0, saveIntervalMs: 0, snapshotIntervalMs: 0 } });
    const start = async () => {
      const engine = await CandidateEngine.open({ dim, dataDir, scenarios: [{ name: 's', generators: ['two-tower'] }] });
      const service = createService(engine, cfg);
      return { engine, service, url: await service.start() };
    };
    let s = await start();
    const put = await fetch(`${s.url}/v1/ads`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ ads: [{ id: 1, embedding: [1, 0, 0, 0] }, { id: 2, embedding: [0, 1, 0, 0] }] }) });
    assert.is(put.status, 200);
    const del = await fetch(`${s.url}/v1/ads`, { method: 'DELETE', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ ids: [2] }) });
    assert.equal(await del.json(), { removed: 1, seq: 2 }, 'the remove is the second write');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /cangen_catalog_sequence 2/);
    assert.match(metrics, /cangen_snapshot_lag_writes 2/);
    assert.match(metrics, /cangen_snapshot_age_seconds -1/);
    await s.service.stop();
    s = await start();
    try {
      assert.is(s.engine.store.size, 1);
      assert.ok(s.engine.store.has(1n) && !s.engine.store.has(2n));
      const stats = s.engine.corpus.stats();
      assert.is(stats.snapshotSeq, 2, 'stop() wrote a snapshot of everything');
      assert.is(stats.replayLag, 0);
    } finally {
      await s.service.stop();
    }
  }),
);

corpus('a reopen with another scan precision passes the snapshot over, rebuilds from the catalog and answers as before', () =>
  withDir(async (dataDir) => {
    const n = 300;
    const vectors = randomVectors(n, dim, 9);
    const queries = randomVectors(3, dim, 10);
    const open = (precision: 'fp32' | 'int8') => AdCorpus.open({ dim, dataDir, contentDim: 0, index: { kind: 'flat', precision } });
    const lines: string[] = [];
    const first = await open('fp32');
    await first.write({ upserts: Array.from({ length: n }, (_, i) => ({ ad: { id: BigInt(i + 1) }, embedding: vectors.subarray(i * dim, (i + 1) * dim) })) });
    await first.snapshot();
    const before = await first.behavioural.search(queries, 10);
    await first.close();
    const second = await AdCorpus.open({ dim, dataDir, contentDim: 0, index: { kind: 'flat', precision: 'int8' }, log: (line) => lines.push(line) });
    try {
      assert.is((await second.behavioural.stats()).options.precision, 'int8');
      assert.ok(lines.some((l) => /passed over: .*fp32 but the corpus is configured as .*int8/.test(l)), lines.join('\n'));
      const after = await second.behavioural.search(queries, 10);
      assert.equal(Array.from(after.ids), Array.from(before.ids));
      assert.equal(Array.from(after.scores), Array.from(before.scores));
    } finally {
      await second.close();
    }
  }),
);

corpus('one corpus per data dir: a second open is refused until the first closes', () =>
  withDir(async (dataDir) => {
    const first = await AdCorpus.open({ dim, dataDir, contentDim: 0 });
    const second = await AdCorpus.open({ dim, dataDir, contentDim: 0 }).then(() => undefined, (e: unknown) => e);
    assert.is((second as { code?: string })?.code, 'ERR_CATALOG');
    assert.match(String((second as Error).message), /already open in this process/);
    await first.close();
    const again = await AdCorpus.open({ dim, dataDir, contentDim: 0 });
    await again.close();
  }),
);

corpus.run();
