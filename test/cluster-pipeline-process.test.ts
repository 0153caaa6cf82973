/**
 * `cangen router --config FILE` as a child process: the service's API over a cluster of 2 shards
 * on a real nats-server. Ads written with PUT /v1/ads (names, embeddings, a cold-start ad with a
 * title only) are answered by POST /v1/retrieve with readAfter exactly as one in-process engine
 * given the same ads answers (two-tower from the shards, content from the router's own index);
 * its metrics say how far the catalog is; a config with the simulator corpus or another dim is refused with
 * a clear error; SIGTERM exits 0.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, ShardReplica, initCluster, type AdUpsert, type ScenarioConfig } from '../lib';
import { withNats } from './helpers/cluster';
import { httpCall } from './helpers/http';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { rejects } from './helpers/rejects';
import { routerProcess } from './helpers/shard-process';
import { runRouter } from '../lib/cli/router';

const run = promisify(execFile);
const test = suite('cangen router --config: the pipeline over a cluster, as a process');
const skip = natsServerMissing();
const dim = 8;
const token = 'pipeline-router-token-0123456789';
const scenarios: ScenarioConfig[] = [{ name: 'feed', generators: ['two-tower', 'content'], k: 20, deadlineMs: 5000 }];

test('writes through the catalog, retrieve with readAfter equal to one engine; dataDir refused; SIGTERM exits 0', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const dir = mkdtempSync(join(tmpdir(), 'cangen-pipeline-'));
  try {
    await withNats(async ({ nats, nc, own }) => {
      await initCluster(nc, { cluster: 'pp', shards: 2, dim });
      for (let s = 0; s < 2; s++) own(await ShardReplica.start(nc, { cluster: 'pp', shard: s, replicaId: `pp${s}`, snapshots: false }));
      const settings = { dim, corpus: 'empty', allocator: 'static', scenarios, feedbackSecret: 'a-feedback-secret-of-at-least-32-chars' };
      const file = join(dir, 'router.json');
      writeFileSync(file, JSON.stringify(settings));
      const badFile = join(dir, 'bad.json');
      writeFileSync(badFile, JSON.stringify({ ...settings, corpus: 'simulator' }));
      await rejects(() => runRouter(['--nats', nats.servers.join(','), '--cluster', 'pp', '--config', badFile], () => undefined), 'ERR_CONFIG', /Expected corpus 'empty' in .* for a router/);
      // Refused after joining the cluster: it leaves again (its applier lease is free for the next router).
      writeFileSync(badFile, JSON.stringify({ ...settings, dim: 16 }));
      await rejects(() => runRouter(['--nats', nats.servers.join(','), '--cluster', 'pp', '--config', badFile, '--router-id', 'wrong-dim'], () => undefined), 'ERR_CONFIG', /Expected dim 8 \(cluster 'pp''s shard map\)/);

      const { child, url } = await routerProcess(nats.servers, 'pp', ['--config', file, '--router-id', 'r1', '--deadline-ms', '2000'], { CANGEN_TOKEN: token });
      const local = own(new CandidateEngine({ dim, scenarios, allocator: 'static' }));
      const vectors = randomVectors(120, dim, 11);
      const ads: AdUpsert[] = Array.from({ length: 120 }, (_, i) => ({
        id: BigInt(700 + i), advertiserId: `adv-${i % 6}`, campaignId: `camp-${i % 9}`, category: i % 2 ? 'shoes' : 'books', geos: i % 3 ? ['fr'] : [],
        ...(i % 15 === 0 ? { title: `waterproof trail running shoe ${i}` } : { embedding: vectors.slice(i * dim, (i + 1) * dim) }),
      }));
      const put = await httpCall(url, 'PUT', '/v1/ads', { ads: ads.map((ad) => ({ ...ad, id: String(ad.id), ...(ad.embedding ? { embedding: [...ad.embedding] } : {}) })) }, { authorization: `Bearer ${token}` });
      assert.is(put.status, 200, put.text);
      assert.equal({ ...put.json, seq: 0 }, { upserted: 120, embedded: 112, cold: 8, seq: 0 });
      await local.upsertAds(ads);

      const users = randomVectors(6, dim, 12);
      for (let u = 0; u < 6; u++) {
        const features = { embedding: users.slice(u * dim, (u + 1) * dim), geo: 'fr', text: 'trail running shoe' };
        const eligibility = u % 2 ? { categories: ['shoes'] } : undefined;
        const expected = await local.retrieve({ userId: `u${u}`, scenario: 'feed', features, eligibility });
        const got = await httpCall(url, 'POST', '/v1/retrieve', { userId: `u${u}`, scenario: 'feed', features: { ...features, embedding: [...features.embedding] }, eligibility, readAfter: put.json.seq });
        assert.is(got.status, 200, got.text);
        assert.equal(got.json.candidates.map((c: { adId: string; source: string }) => `${c.adId}:${c.source}`), expected.candidates.map((c) => `${c.adId}:${c.source}`), `user ${u}`);
        got.json.candidates.forEach((c: { score: number }, i: number) => assert.ok(Math.abs(c.score - expected.candidates[i]!.score) < 1e-5, `user ${u} score ${i}`));
        assert.ok(expected.candidates.some((c) => c.source === 'content'), 'the cold-start ads are found by text');
      }
      // A remove read back at once: its seq covers it.
      const best = (await local.retrieve({ userId: 'x', scenario: 'feed', features: { embedding: vectors.slice(dim, 2 * dim) } })).candidates[0]!.adId;
      const del = await httpCall(url, 'DELETE', '/v1/ads', { ids: [String(best)] }, { authorization: `Bearer ${token}` });
      assert.is(del.status, 200, del.text);
      assert.equal(del.json, { removed: 1, seq: put.json.seq + 1 });
      const after = await httpCall(url, 'POST', '/v1/retrieve', { userId: 'x', scenario: 'feed', features: { embedding: [...vectors.slice(dim, 2 * dim)] }, readAfter: del.json.seq });
      assert.is(after.status, 200, after.text);
      assert.ok(after.json.candidates.length > 0 && !after.json.candidates.some((c: { adId: string }) => c.adId === String(best)), 'the removed ad is not served');
      const metrics = await httpCall(url, 'GET', '/metrics');
      assert.match(metrics.text, new RegExp(`cangen_catalog_applied_sequence ${del.json.seq}\\n`));
      assert.match(metrics.text, /cangen_catalog_applier_holding 1\n/);
      assert.match(metrics.text, /cangen_router_searches_total \d+/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.is(await exited, 0);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('examples/cluster-pipeline.ts runs against a real nats-server and retrieves what it wrote', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  await withNats(async ({ nats }) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'examples', 'cluster-pipeline.ts')], { env: { ...process.env, NATS_URL: nats.servers[0]! }, timeout: 60_000 });
    assert.match(stdout, /wrote 190 ads with an embedding and 10 cold-start ads through the catalog \(sequence 1\)/);
    assert.match(stdout, /ad \d+ from two-tower/, stdout);
    assert.match(stdout, /two-tower: ok, \d+ kept\n/);
  });
});

test.run();
