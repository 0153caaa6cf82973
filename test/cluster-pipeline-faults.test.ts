/**
 * The catalog applier's router killed with SIGKILL while writes flow: two `cangen router --config`
 * processes in front of 2 shards on a real nats-server; a writer sends upserts and removes through
 * the second router without pause; the first (holding the applier lease) is killed mid-stream and
 * restarted. Every acknowledged write reaches the shards: at the end each replica holds exactly the
 * ads of its shard that an in-process engine given the acknowledged writes holds, and retrieves
 * through the restarted router equal that engine's.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CandidateEngine, ShardReplica, initCluster, shardOf, type AdUpsert, type ScenarioConfig } from '../lib';
import { withNats } from './helpers/cluster';
import { httpCall } from './helpers/http';
import { natsServerMissing } from './helpers/nats-server';
import { randomVectors } from './helpers/random';
import { routerProcess } from './helpers/shard-process';

const test = suite('cluster: the catalog applier killed while writes flow');
const skip = natsServerMissing();
const dim = 8;
const token = 'pipeline-fault-token-0123456789';
const auth = { authorization: `Bearer ${token}` };
const scenarios: ScenarioConfig[] = [{ name: 'feed', generators: ['two-tower'], k: 20, deadlineMs: 5000 }];

async function metric(url: string, name: string): Promise<number | undefined> {
  const text = (await httpCall(url, 'GET', '/metrics')).text;
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('no acknowledged write is lost when the applier\'s router is SIGKILLed and restarted', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const dir = mkdtempSync(join(tmpdir(), 'cangen-pipeline-faults-'));
  const children: ChildProcess[] = [];
  try {
    await withNats(async ({ nats, nc, own }) => {
      await initCluster(nc, { cluster: 'pf', shards: 2, dim });
      const replicas = [0, 1].map((s) => s);
      const held: ShardReplica[] = [];
      for (const s of replicas) held.push(own(await ShardReplica.start(nc, { cluster: 'pf', shard: s, replicaId: `pf${s}`, snapshots: false })));
      const file = join(dir, 'router.json');
      writeFileSync(file, JSON.stringify({ dim, corpus: 'empty', allocator: 'static', scenarios, feedbackSecret: 'a-feedback-secret-of-at-least-32-chars' }));
      const start = async (id: string) => {
        const r = await routerProcess(nats.servers, 'pf', ['--config', file, '--router-id', id, '--deadline-ms', '2000'], { CANGEN_TOKEN: token });
        children.push(r.child);
        return r;
      };
      const a = await start('ra');
      await eventually(async () => (await metric(a.url, 'cangen_catalog_applier_holding')) === 1, 10_000, 'router a holding the applier lease');
      const b = await start('rb');

      // The writer: batches of upserts (some replacing earlier ads' vectors and names) and removes, through b, one at a time.
      const local = own(new CandidateEngine({ dim, scenarios, allocator: 'static' }));
      let writing = true;
      let acknowledged = 0;
      let lastSeq = 0;
      const vectors = randomVectors(4000, dim, 21);
      const writer = (async () => {
        for (let batch = 0; writing || batch < 40; batch++) {
          const ads: AdUpsert[] = Array.from({ length: 20 }, (_, i) => {
            const n = (batch * 13 + i * 7) % 400;
            const row = (batch * 20 + i) % 4000;
            return { id: BigInt(1000 + n), advertiserId: `adv-${(batch + i) % 5}`, category: `cat-${n % 4}`, embedding: vectors.slice(row * dim, (row + 1) * dim) };
          });
          const unique = [...new Map(ads.map((ad) => [ad.id, ad])).values()];
          const put = await httpCall(b.url, 'PUT', '/v1/ads', { ads: unique.map((ad) => ({ ...ad, id: String(ad.id), embedding: [...ad.embedding!] })) }, auth);
          assert.is(put.status, 200, put.text);
          await local.upsertAds(unique);
          lastSeq = put.json.seq;
          acknowledged++;
          if (batch % 5 === 4) {
            const gone = [BigInt(1000 + ((batch * 31) % 400))];
            const del = await httpCall(b.url, 'DELETE', '/v1/ads', { ids: gone.map(String) }, auth);
            assert.is(del.status, 200, del.text);
            await local.removeAds(gone);
          }
        }
      })();

      await eventually(async () => acknowledged >= 10, 20_000, 'writes flowing');
      a.child.kill('SIGKILL');
      await new Promise((r) => a.child.once('exit', r));
      await eventually(async () => acknowledged >= 25, 30_000, 'writes acknowledged with the applier dead');
      const again = await start('ra');
      writing = false;
      await writer;

      // A last write, to read back through the restarted router once everything before it is in the shards.
      const final = await httpCall(b.url, 'PUT', '/v1/ads', { ads: [{ id: '999', category: 'cat-0', embedding: Array(dim).fill(0.25) }] }, auth);
      await local.upsertAds([{ id: 999n, category: 'cat-0', embedding: new Float32Array(dim).fill(0.25) }]);
      lastSeq = final.json.seq;
      const users = randomVectors(6, dim, 22);
      for (let u = 0; u < 6; u++) {
        const features = { embedding: [...users.slice(u * dim, (u + 1) * dim)] };
        const ask = () => httpCall(again.url, 'POST', '/v1/retrieve', { userId: `u${u}`, scenario: 'feed', features, readAfter: lastSeq, deadlineMs: 1000 });
        let got = await ask();
        // 503 ERR_CLUSTER while the applier has not sent the last write yet (a lease passing on takes up to 5 s).
        for (let tries = 0; got.status === 503 && tries < 20; tries++) got = await ask();
        assert.is(got.status, 200, got.text);
        const expected = await local.retrieve({ userId: `u${u}`, scenario: 'feed', features: { embedding: users.slice(u * dim, (u + 1) * dim) } });
        assert.equal(got.json.candidates.map((c: { adId: string }) => c.adId), expected.candidates.map((c) => String(c.adId)), `user ${u}`);
      }
      // Ad by ad: each replica holds exactly the live ads of its shard.
      const live = [...local.store].map((ad) => ad.id);
      for (const replica of held) {
        const holds = [...(await replica.index.eligibleIds({}))].sort();
        assert.equal(holds, live.filter((id) => shardOf(id, 2) === replica.shard).sort(), `shard ${replica.shard}`);
      }
      console.log(`  ${acknowledged} writes acknowledged through router b; router a (the applier) SIGKILLed after 10 and restarted; every one in the shards`);
    });
  } finally {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
