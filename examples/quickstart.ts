/**
 * The quick start: index a generated ads corpus, answer a stream of user queries, and print
 * latency and recall against a float64 brute force. Run with `npm run demo`.
 */
import { buildInfo, FaissIndex, FlatIndex, type AdIndex } from '../lib';

const dim = 64;
const ads = 200_000;
const k = 10;

// A corpus with structure: ads cluster around 256 topics, users query near a topic.
function clusteredCorpus(n: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const topics = Float32Array.from({ length: 256 * dim }, next);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const t = Math.floor(((next() + 1) / 2) * 256) % 256;
    for (let j = 0; j < dim; j++) out[i * dim + j] = topics[t * dim + j]! + 0.35 * next();
  }
  return out;
}

function exactTopK(corpus: Float32Array, query: Float32Array): Set<bigint> {
  const scores = new Float64Array(ads);
  for (let i = 0; i < ads; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += query[j]! * corpus[i * dim + j]!;
    scores[i] = s;
  }
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
  return new Set(order.slice(0, k).map((i) => BigInt(i + 1)));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function main() {
  const info = buildInfo();
  console.log(`cangen ${info.version}: FAISS ${info.faissVersion} (${info.faissSimd}), scan kernel ${info.scanSimd}, ` +
    `${info.threads} threads, CUDA ${info.cudaDevices > 0 ? info.cudaDevice : 'not available'}`);
  const corpus = clusteredCorpus(ads, 7);
  const ids = BigInt64Array.from({ length: ads }, (_, i) => BigInt(i + 1));
  const users = clusteredCorpus(256, 11);
  const truth = Array.from({ length: 20 }, (_, q) => exactTopK(corpus, users.subarray(q * dim, (q + 1) * dim)));

  const contenders: { name: string; index: AdIndex; device: 'cpu' | 'gpu' }[] = [
    { name: 'cangen exact (CPU)', index: new FlatIndex({ dim }), device: 'cpu' },
    { name: 'FAISS Flat', index: new FaissIndex({ dim, factory: 'Flat' }), device: 'cpu' },
  ];
  if (info.cudaDevices > 0) contenders.push({ name: 'cangen exact (GPU)', index: new FlatIndex({ dim }), device: 'gpu' });

  console.log(`\n${ads.toLocaleString()} ads x ${dim} dims, top-${k} by inner product\n`);
  console.log('index                 add ms   p50 ms (1 user)   p99 ms   users/s (batch 256)   recall@10');
  for (const { name, index, device } of contenders) {
    let t = performance.now();
    await index.add(ids, corpus);
    const addMs = performance.now() - t;
    const latencies: number[] = [];
    let hits = 0;
    for (let q = 0; q < 100; q++) {
      const query = users.subarray((q % 256) * dim, ((q % 256) + 1) * dim);
      t = performance.now();
      const r = await index.search(query, k, { device });
      latencies.push(performance.now() - t);
      if (q < truth.length) hits += Array.from(r.row(0).ids).filter((id) => truth[q]!.has(id)).length;
    }
    t = performance.now();
    await index.search(users, k, { device });
    const batchQps = 256 / ((performance.now() - t) / 1000);
    console.log(
      `${name.padEnd(20)} ${addMs.toFixed(0).padStart(7)}   ${percentile(latencies, 0.5).toFixed(2).padStart(15)}   ` +
        `${percentile(latencies, 0.99).toFixed(2).padStart(6)}   ${batchQps.toFixed(0).padStart(19)}   ${(hits / (truth.length * k)).toFixed(3).padStart(9)}`,
    );
    index.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
