/**
 * The native user-sequence encoder against the trainer's PyTorch module: random-weight HSTU and
 * SASRec models exported by the trainer (with and without actions, times, side features, the
 * long-term fusion, several interests and a short window) and one HSTU model the trainer trained
 * for a few epochs, exported and loaded back, encode histories of length 1, 2, L-1,
 * L and longer than L, with unknown ids, and with no known event, to the queries PyTorch (float64
 * and float32) gives. Plus the loader's and encode's typed errors. Skipped (with a line saying
 * why) where PyTorch is not installed.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SequenceEncoder, type SequenceHistories } from '../lib';
import { missingTrainingDependencies, pythonForTraining, trainPackageDir } from '../lib/cli/train';
import { rejects } from './helpers/rejects';
import { maxRelativeError } from './helpers/sequence-random';

interface Case {
  name: string;
  dir: string;
  times: boolean;
  actions: boolean;
  interests: number;
  dim: number;
  users: { items: number[]; times: number[]; actions: number[] }[];
  float64: number[];
  float32: number[];
}

const python = pythonForTraining();
const missing = missingTrainingDependencies(python);
const parity = suite('SequenceEncoder parity with PyTorch');
const test = missing ? parity.skip : parity;
if (missing) console.log(`skipped: ${missing}`);

let work = '';
let cases: Case[] = [];
parity.before(() => {
  if (missing) return;
  work = mkdtempSync(join(os.tmpdir(), 'cangen-sequence-'));
  const made = spawnSync(python, [join(__dirname, 'helpers', 'sequence_parity.py'), work], {
    cwd: trainPackageDir, encoding: 'utf8', timeout: 300_000, env: { ...process.env, PYTHONPATH: trainPackageDir },
  });
  assert.is(made.status, 0, `${made.stdout}\n${made.stderr}`);
  cases = JSON.parse(readFileSync(join(work, 'expected.json'), 'utf8')) as Case[];
});
parity.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function historiesOf(c: Case): SequenceHistories {
  const offsets = new Uint32Array(c.users.length + 1);
  c.users.forEach((u, i) => (offsets[i + 1] = offsets[i]! + u.items.length));
  const flat = (key: 'items' | 'times' | 'actions') => c.users.flatMap((u) => u[key]);
  const h: SequenceHistories = { items: Int32Array.from(flat('items')), offsets };
  if (c.actions) h.actions = Int32Array.from(flat('actions'));
  if (c.times) h.times = Float64Array.from(flat('times'));
  return h;
}

test('every case encodes as PyTorch does, to 1e-4 relative (float64 reference), at 1 and 2 threads', async () => {
  assert.is(cases.length, 6);
  for (const c of cases) {
    const encoder = await SequenceEncoder.load(c.dir);
    try {
      assert.is(encoder.dim, c.dim);
      assert.is(encoder.interests, c.interests);
      const h = historiesOf(c);
      for (const threads of [1, 2]) {
        const got = await encoder.encode(h, { threads });
        assert.is(got.length, c.users.length * c.interests * c.dim);
        assert.ok(got.every(Number.isFinite), `${c.name}: non-finite output`);
        const vs64 = maxRelativeError(got, c.float64, c.dim);
        const vs32 = maxRelativeError(got, c.float32, c.dim);
        if (threads === 1) console.log(`  ${c.name}: max relative error ${vs64.toExponential(2)} vs PyTorch float64, ${vs32.toExponential(2)} vs float32`);
        assert.ok(vs64 <= 1e-4, `${c.name} (${threads} threads): max relative error ${vs64} vs PyTorch float64`);
        assert.ok(vs32 <= 1e-4, `${c.name} (${threads} threads): max relative error ${vs32} vs PyTorch float32`);
      }
    } finally {
      encoder.close();
    }
  }
});

test('truncation, unknown ids and empty histories follow the documented rules', async () => {
  const c = cases[0]!;
  const encoder = await SequenceEncoder.load(c.dir);
  try {
    const h = historiesOf(c);
    const all = await encoder.encode(h);
    const width = c.interests * c.dim;
    const user = (u: number) => all.subarray(u * width, (u + 1) * width);
    // The user with L + 5 events (index 4) equals the same user cut to its most recent L.
    const long = c.users[4]!;
    const cut = (a: number[]) => a.slice(a.length - encoder.maxLen);
    const alone = await encoder.encode({
      items: Int32Array.from(cut(long.items)), offsets: Uint32Array.of(0, encoder.maxLen),
      actions: Int32Array.from(cut(long.actions)), times: Float64Array.from(cut(long.times)),
    });
    assert.equal(Array.from(alone), Array.from(user(4)));
    // No events and only unknown events both give the no-history query.
    assert.equal(Array.from(user(6)), Array.from(user(7)));
    // Concurrent calls on one encoder (each with its own team) give the same queries.
    const concurrent = await Promise.all([1, 2, 2, 1].map((threads) => encoder.encode(h, { threads })));
    for (const q of concurrent) assert.equal(Array.from(q), Array.from(all));
    // Zero users: an empty result.
    assert.is((await encoder.encode({ items: new Int32Array(0), offsets: Uint32Array.of(0) })).length, 0);
    // rows(): original ids to rows, unknown ids to 0.
    const ids = readFileSync(join(c.dir, 'items.txt'), 'utf8').trim().split('\n');
    assert.equal(Array.from(encoder.rows([ids[2]!, 'never-seen', ids[0]!])), [3, 0, 1]);
    assert.equal(Array.from(encoder.actionRows(['click', 'nope'])), [readFileSync(join(c.dir, 'actions.txt'), 'utf8').split('\n').indexOf('click') + 1, 0]);
    assert.is(encoder.itemEmbeddings().length, (ids.length + 1) * c.dim);
  } finally {
    encoder.close();
  }
});

test('bad histories reject with typed errors', async () => {
  const c = cases[0]!;
  const encoder = await SequenceEncoder.load(c.dir);
  try {
    const items = Int32Array.of(1, 2, 3);
    const bad = (h: unknown) => () => encoder.encode(h as SequenceHistories);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 2, 1, 3) }), 'ERR_INVALID_ARGUMENT', /non-decreasing/);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 2) }), 'ERR_INVALID_ARGUMENT', /from 0 to items.length 3/);
    await rejects(bad({ items, offsets: new Uint32Array(0) }), 'ERR_INVALID_ARGUMENT', /offsets/);
    await rejects(bad({ items: [1, 2, 3], offsets: Uint32Array.of(0, 3) }), 'ERR_INVALID_ARGUMENT', /Int32Array/);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 3), times: Float64Array.of(1, 2) }), 'ERR_DIMENSION_MISMATCH', /times/);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 3), actions: Int32Array.of(1) }), 'ERR_DIMENSION_MISMATCH', /actions/);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 3), times: Float64Array.of(1, NaN, 2) }), 'ERR_NON_FINITE', /times\[1\]/);
    await rejects(bad({ items, offsets: Uint32Array.of(0, 3), time: Float64Array.of(1, 2, 3) }), 'ERR_INVALID_ARGUMENT', /did you mean 'times'/);
    await rejects(() => encoder.encode({ items, offsets: Uint32Array.of(0, 3) }, { threads: -1 }), 'ERR_INVALID_ARGUMENT', /threads/);
    encoder.close();
    await rejects(bad({ items, offsets: Uint32Array.of(0, 3) }), 'ERR_CLOSED', /closed/);
  } finally {
    encoder.close();
  }
});

test('load rejects missing, truncated, mismatched and NaN model files naming file and tensor', async () => {
  const source = cases[0]!.dir;
  const copy = (name: string) => {
    const dir = join(work, `broken-${name}`);
    cpSync(source, dir, { recursive: true });
    return dir;
  };
  await rejects(() => SequenceEncoder.load(join(work, 'nowhere')), 'ERR_MODEL_FORMAT', /config\.json: no such file/);
  const weights = readFileSync(join(source, 'model.safetensors'));
  const truncated = copy('truncated');
  writeFileSync(join(truncated, 'model.safetensors'), weights.subarray(0, weights.length - 100));
  await rejects(() => SequenceEncoder.load(truncated), 'ERR_MODEL_FORMAT', /model\.safetensors.*truncated/);
  // A NaN inside the last tensor of the data section.
  const nan = copy('nan');
  const poisoned = Buffer.from(weights);
  const headerLength = Number(poisoned.readBigUInt64LE(0));
  const header = JSON.parse(poisoned.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const [name, entry] = Object.entries(header).find(([n, e]) => n !== '__metadata__' && e.dtype === 'F32')!;
  poisoned.writeFloatLE(NaN, 8 + headerLength + entry.data_offsets[0]);
  writeFileSync(join(nan, 'model.safetensors'), poisoned);
  await rejects(() => SequenceEncoder.load(nan), 'ERR_MODEL_FORMAT', new RegExp(`tensor '${name.replace(/\./g, '\\.')}' holds NaN`));
  // config.json claiming another architecture: a tensor's shape no longer matches.
  const mismatched = copy('mismatched');
  const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(mismatched, 'config.json'), JSON.stringify({ ...config, maxLen: (config.maxLen as number) + 1 }));
  await rejects(() => SequenceEncoder.load(mismatched), 'ERR_MODEL_FORMAT', /bias\.position' has shape \[\d+\] but config\.json implies/);
  const fewerLayers = copy('layers');
  writeFileSync(join(fewerLayers, 'config.json'), JSON.stringify({ ...config, layers: 1 }));
  await rejects(() => SequenceEncoder.load(fewerLayers), 'ERR_MODEL_FORMAT', /unexpected tensor 'encoder\.layers\.1/);
  const items = copy('items');
  writeFileSync(join(items, 'items.txt'), 'a\nb\n');
  await rejects(() => SequenceEncoder.load(items), 'ERR_MODEL_FORMAT', /items\.txt: 2 item ids but config\.json has numItems/);
  const format = copy('format');
  writeFileSync(join(format, 'config.json'), JSON.stringify({ ...config, version: 2 }));
  await rejects(() => SequenceEncoder.load(format), 'ERR_MODEL_FORMAT', /version 2, expected "cangen-user-model" version 1/);
  copyFileSync(join(source, 'config.json'), join(format, 'config.json'));
  const encoder = await SequenceEncoder.load(format);
  encoder.close();
});

/** One user's history cut to its first k events, as a one-user batch. */
function prefix(c: Case, user: number, k: number): SequenceHistories {
  const u = c.users[user]!;
  const h: SequenceHistories = { items: Int32Array.from(u.items.slice(0, k)), offsets: Uint32Array.of(0, k) };
  if (c.actions) h.actions = Int32Array.from(u.actions.slice(0, k));
  if (c.times) h.times = Float64Array.from(u.times.slice(0, k));
  return h;
}

test('sessions: appending one event at a time equals a full recompute (HSTU reuses every earlier event; SASRec recomputes)', async () => {
  for (const c of cases) {
    const encoder = await SequenceEncoder.load(c.dir);
    const sessions = encoder.sessions();
    try {
      const long = c.users[4]!;  // L + 5 known events
      const L = encoder.maxLen;
      for (let k = 1; k <= long.items.length; k++) {
        const h = prefix(c, 4, k);
        const full = await encoder.encode(h);
        const incremental = await sessions.encode(['u4'], h);
        const error = maxRelativeError(incremental, Array.from(full), c.dim);
        assert.ok(error <= 1e-5, `${c.name}, ${k} events: incremental vs full ${error}`);
      }
      const stats = sessions.stats();
      const steps = long.items.length;
      if (c.name.startsWith('hstu')) {
        // Up to L events each step reuses all earlier ones; past L the window slides and is recomputed.
        assert.is(stats.reusedEvents, (L * (L - 1)) / 2, `${c.name}: ${JSON.stringify(stats)}`);
        assert.is(stats.encodedEvents, L + (steps - L) * L, `${c.name}: ${JSON.stringify(stats)}`);
        assert.is(stats.sessions, 1);
        assert.ok(stats.bytes > 0 && stats.bytes <= stats.maxBytes);
      } else {
        assert.is(stats.reusedEvents, 0);
        assert.is(stats.sessions, 0);
      }
    } finally {
      sessions.close();
      encoder.close();
    }
  }
});

test('sessions: batches with repeated users, unknown ids, edited histories, evictions and concurrent calls equal full recomputes', async () => {
  const c = cases.find((x) => x.name === 'hstu-long-interests-window')!;
  const encoder = await SequenceEncoder.load(c.dir);
  const probe = encoder.sessions();
  await probe.encode(['p'], prefix(c, 3, encoder.maxLen));
  const perSession = probe.stats().bytes;  // one full window's session
  probe.close();
  const sessions = encoder.sessions({ maxBytes: Math.floor(perSession * 2.5) });  // room for two: forces evictions
  try {
    const h = historiesOf(c);
    const users = c.users.map((_, u) => `user-${u % 3}`);  // names repeat: sessions get mixed up on purpose
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.all([sessions.encode(users, h), sessions.encode(users.slice().reverse(), h)]);
      const full = Array.from(await encoder.encode(h));
      assert.ok(maxRelativeError(a, full, c.dim) <= 1e-5, `round ${round}`);
      assert.ok(maxRelativeError(b, full, c.dim) <= 1e-5, `round ${round} (reversed names)`);
    }
    const stats = sessions.stats();
    assert.ok(stats.bytes <= stats.maxBytes, JSON.stringify(stats));
    assert.ok(stats.evictions > 0 && stats.sessions >= 1, `expected evictions with a budget of 2 sessions: ${JSON.stringify(stats)}`);
    // An edited history (an earlier event changed) and an appended unknown id.
    const roomy = encoder.sessions();
    const base = prefix(c, 3, 6);
    await roomy.encode(['x'], base);
    const edited = { ...base, items: Int32Array.from(base.items, (v, i) => (i === 1 ? (v % c.users.length) + 1 : v)) };
    assert.equal(Array.from(await roomy.encode(['x'], edited)), Array.from(await encoder.encode(edited)));
    const unknownAppended: SequenceHistories = {
      items: Int32Array.of(...edited.items, 0), offsets: Uint32Array.of(0, 7), times: Float64Array.of(...edited.times!, 5),
    };
    const before = roomy.stats().reusedEvents;
    assert.equal(Array.from(await roomy.encode(['x'], unknownAppended)), Array.from(await encoder.encode(unknownAppended)));
    assert.is(roomy.stats().reusedEvents - before, 6, 'the unknown event changes nothing: all 6 reused');
    roomy.forget(['x']);
    assert.is(roomy.stats().sessions, 0);
    await rejects(() => roomy.encode(['x', 'y'], base), 'ERR_INVALID_ARGUMENT', /array of 1 user id strings/);
    roomy.close();
    await rejects(() => roomy.encode(['x'], base), 'ERR_CLOSED', /closed/);
  } finally {
    sessions.close();
    encoder.close();
  }
});

test('sessions: an append runs without the hop to a worker thread', async () => {
  const c = cases.find((x) => x.name.startsWith('hstu') && x.times)!;
  const encoder = await SequenceEncoder.load(c.dir);
  const sessions = encoder.sessions();
  try {
    const L = encoder.maxLen;
    await sessions.encode(['a'], prefix(c, 4, L - 1));
    // Keep every libuv worker busy with large encodes: an append that went through a worker
    // would wait for one of them; one run on the main thread settles first. (Inputs under 1 MiB
    // reach the native call at once; larger ones are first copied in slices, asynchronously.)
    const h = historiesOf(c);
    const copies = Math.floor(2 ** 20 / Float64Array.BYTES_PER_ELEMENT / h.items.length);
    const big: SequenceHistories = {
      items: new Int32Array(h.items.length * copies), offsets: new Uint32Array(h.offsets.length * copies - copies + 1),
      times: new Float64Array(h.items.length * copies),
    };
    for (let k = 0; k < copies; k++) {
      big.items.set(h.items, k * h.items.length);
      big.times!.set(h.times!, k * h.items.length);
      for (let u = 1; u < h.offsets.length; u++) big.offsets[k * (h.offsets.length - 1) + u] = k * h.items.length + h.offsets[u]!;
    }
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const busy = Array.from({ length: pool }, () => encoder.encode(big, { threads: 1 }).then(() => 'worker'));
    const append = sessions.encode(['a'], prefix(c, 4, L)).then(() => 'append');
    assert.is(await Promise.race([append, ...busy]), 'append');
    await Promise.all(busy);
    assert.equal(Array.from(await append.then(() => sessions.encode(['a'], prefix(c, 4, L)))), Array.from(await encoder.encode(prefix(c, 4, L))));
  } finally {
    sessions.close();
    encoder.close();
  }
});

parity.run();
