/**
 * Retrieval quality through cangen's own serving path (`bench/quality.ts --serve`): every test user
 * of a trained model's data is encoded by SequenceEncoder (native) and retrieved with cangen's
 * indexes, exact (AdIndex 'flat', full ranking) and approximate (HNSW), and HR/NDCG are computed
 * from those answers under the trainer's protocols (train/cangen_train/metrics.py: ties count
 * against the target; s3rec scores the user's earlier items 0 and keeps the padding item, score
 * 0, as a candidate; gr removes the input window's items; raw removes nothing). The test examples
 * and the trainer's own (PyTorch) evaluation of the same exported model come from
 * bench/quality_examples.py, so both sides score the same users.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { AdIndex, SequenceEncoder } from '../lib';
import { pythonForTraining, trainPackageDir } from '../lib/cli/train';

export type Protocol = 's3rec' | 'gr' | 'raw';
const protocols: Protocol[] = ['s3rec', 'gr', 'raw'];
const cutoff = 10;

interface Example {
  window: number[];
  history: number[];
  target: number;
  times?: number[];
  actions?: number[];
}
interface Examples {
  maxLen: number;
  numItems: number;
  users: Example[];
  torch: Record<Protocol, Record<string, number>>;
}

export interface ServeMetrics {
  hr10: number;
  ndcg10: number;
}

export interface ServeQuality {
  users: number;
  torch: Record<Protocol, ServeMetrics>;
  exact: Record<Protocol, ServeMetrics>;
  ann: Record<Protocol, ServeMetrics>;
  annSetting: string;
  encodeSeconds: number;
}

/** Which data the model was trained on: the trainer's flags, as bench/quality.ts passes them. */
export function dataFlags(args: readonly string[], dataRoot: string): string[] {
  const out: string[] = [];
  for (const flag of ['--data', '--item-features', '--format', '--columns']) {
    const at = args.indexOf(flag);
    if (at >= 0) out.push(flag, flag === '--data' || flag === '--item-features' ? join(dataRoot, args[at + 1]!) : args[at + 1]!);
  }
  if (args.includes('--drop-short')) out.push('--drop-short');
  return out;
}

function readExamples(modelDir: string, flags: string[]): Examples {
  const work = mkdtempSync(join(os.tmpdir(), 'cangen-quality-serve-'));
  try {
    const file = join(work, 'examples.json');
    const run = spawnSync(pythonForTraining(), [join(__dirname, 'quality_examples.py'), modelDir, file, ...flags], {
      encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, PYTHONPATH: trainPackageDir },
    });
    if (run.status !== 0) throw new Error(`quality_examples.py failed: ${(run.stderr || run.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
    return JSON.parse(readFileSync(file, 'utf8')) as Examples;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Rank of the target under `protocol` from `scores` (N + 1 entries, one per item row, -Infinity for
 * items the index did not return: they rank below everything); `work` is scratch of the same size.
 */
function rankOf(scores: Float32Array, work: Float32Array, e: Example, protocol: Protocol): number {
  work.set(scores);
  if (protocol === 's3rec') {
    for (const item of e.history) work[item] = 0;
    work[0] = 0;  // the padding item is a candidate, score 0
  } else {
    if (protocol === 'gr') for (const item of e.window) work[item] = -Infinity;
    work[0] = -Infinity;
  }
  const target = work[e.target]!;
  if (target === -Infinity) return Infinity;
  let rank = 0;
  for (let i = 0; i < work.length; i++) if (work[i]! >= target) rank++;
  return rank;
}

function summarize(ranks: number[]): ServeMetrics {
  let hr = 0;
  let ndcg = 0;
  for (const r of ranks) {
    if (r <= cutoff) {
      hr++;
      ndcg += 1 / Math.log2(r + 1);
    }
  }
  return { hr10: hr / ranks.length, ndcg10: ndcg / ranks.length };
}

/** Encodes every test user and scores cangen's exact and HNSW answers beside the trainer's own evaluation. */
export async function serveQuality(modelDir: string, flags: string[], options: { threads: number; efSearch?: number; annK?: number }): Promise<ServeQuality> {
  const examples = readExamples(modelDir, flags);
  const encoder = await SequenceEncoder.load(modelDir, { threads: options.threads });
  const dim = encoder.dim;
  const n = encoder.numItems;
  const rows = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
  const table = encoder.itemEmbeddings().subarray(dim);
  const exact = new AdIndex({ dim, metric: 'ip', threads: options.threads });
  const efSearch = options.efSearch ?? 128;
  const annK = options.annK ?? 200;
  const ann = new AdIndex({ dim, metric: 'ip', kind: 'hnsw', efSearch, threads: options.threads });
  await exact.upsert(rows, table);
  await ann.upsert(rows, table);
  const ranks = { exact: Object.fromEntries(protocols.map((p) => [p, [] as number[]])), ann: Object.fromEntries(protocols.map((p) => [p, [] as number[]])) } as Record<'exact' | 'ann', Record<Protocol, number[]>>;
  const scores = new Float32Array(n + 1);
  const work = new Float32Array(n + 1);
  let encodeSeconds = 0;
  const batch = 256;
  for (let start = 0; start < examples.users.length; start += batch) {
    const group = examples.users.slice(start, start + batch);
    const offsets = new Uint32Array(group.length + 1);
    group.forEach((e, i) => (offsets[i + 1] = offsets[i]! + e.window.length));
    const items = Int32Array.from(group.flatMap((e) => e.window));
    const times = group[0]!.times ? Float64Array.from(group.flatMap((e) => e.times!)) : undefined;
    const actions = group[0]!.actions ? Int32Array.from(group.flatMap((e) => e.actions!)) : undefined;
    const started = performance.now();
    const queries = await encoder.encode({ items, offsets, ...(times ? { times } : {}), ...(actions ? { actions } : {}) });
    encodeSeconds += (performance.now() - started) / 1000;
    for (const [side, index, k] of [['exact', exact, n], ['ann', ann, annK]] as const) {
      // One row per (user, interest); an item's score is its best over the user's interests.
      const found = await index.search(queries, k);
      group.forEach((e, u) => {
        scores.fill(-Infinity);
        for (let q = u * encoder.interests; q < (u + 1) * encoder.interests; q++) {
          const { ids, scores: s } = found.row(q);
          ids.forEach((id, i) => (scores[Number(id)] = Math.max(scores[Number(id)]!, s[i]!)));
        }
        for (const p of protocols) ranks[side][p].push(rankOf(scores, work, e, p));
      });
    }
  }
  encoder.close();
  exact.close();
  ann.close();
  const pick = (m: Record<string, number>): ServeMetrics => ({ hr10: m['hr@10']!, ndcg10: m['ndcg@10']! });
  return {
    users: examples.users.length,
    torch: Object.fromEntries(protocols.map((p) => [p, pick(examples.torch[p])])) as Record<Protocol, ServeMetrics>,
    exact: Object.fromEntries(protocols.map((p) => [p, summarize(ranks.exact[p])])) as Record<Protocol, ServeMetrics>,
    ann: Object.fromEntries(protocols.map((p) => [p, summarize(ranks.ann[p])])) as Record<Protocol, ServeMetrics>,
    annSetting: `hnsw M32 efSearch ${efSearch}, top ${annK}`,
    encodeSeconds,
  };
}

/** The table of one model: per protocol, PyTorch's numbers, cangen exact (and the difference), cangen ANN (and its loss). */
export function serveTable(name: string, q: ServeQuality): string {
  const lines = [
    `${name}: ${q.users} test users; cangen encoded them in ${q.encodeSeconds.toFixed(1)} s; ANN = ${q.annSetting}`,
    'protocol  torch HR@10  NDCG@10 | cangen exact HR@10  NDCG@10  |dHR|   | cangen ANN HR@10  NDCG@10  HR loss',
  ];
  for (const p of protocols) {
    const t = q.torch[p];
    const e = q.exact[p];
    const a = q.ann[p];
    const loss = e.hr10 > 0 ? (1 - a.hr10 / e.hr10) * 100 : 0;
    lines.push(`${p.padEnd(8)}  ${t.hr10.toFixed(4).padStart(11)}  ${t.ndcg10.toFixed(4).padStart(7)} | ${e.hr10.toFixed(4).padStart(18)}  ${e.ndcg10.toFixed(4).padStart(7)}  ${Math.abs(e.hr10 - t.hr10).toFixed(4)} | ${a.hr10.toFixed(4).padStart(16)}  ${a.ndcg10.toFixed(4).padStart(7)}  ${loss.toFixed(2)}%`);
  }
  return lines.join('\n');
}
