import { readdirSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdIndex, buildInfo, FlatIndex, LearnedScorer, limits, setLimits } from '../lib';
import { randomVectors, sequentialIds } from './helpers/random';
import { randomTensors, writeModel } from './helpers/scorer-model';

// Concurrent calls (one per libuv worker) share one thread budget instead of each starting a
// team of every core; counted two ways: cangen's own count of threads inside its parallel
// regions, and the operating system's threads of this process (/proc/self/task).
const threads = suite('one thread budget for the process');
const dim = 32;
const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
const osThreads = () => readdirSync('/proc/self/task').length;

threads.after.each(() => setLimits({ threads: 0 }));

threads('buildInfo() reports the budget and where it comes from', () => {
  const info = buildInfo();
  assert.ok(info.threads >= 1);
  assert.is(info.threads, limits().threads);
  assert.ok(['affinity', 'cgroup', 'CANGEN_THREAD_BUDGET', 'setThreadBudget'].includes(info.threadSource), info.threadSource);
  assert.ok(info.affinityCpus >= 1);
  if (info.threadSource === 'affinity') assert.is(info.threads, info.affinityCpus);
  if (info.threadSource === 'cgroup') assert.is(info.threads, Math.max(1, Math.ceil(info.cgroupCpus)));
  setLimits({ threads: 3 });
  assert.is(buildInfo().threads, 3);
  assert.is(buildInfo().threadSource, 'setThreadBudget');
  assert.throws(() => setLimits({ threads: 1.5 }), /threads/);
});

threads('concurrent searches of every kind stay within the budget', async () => {
  const n = 20000;
  const ads = randomVectors(n, dim, 1);
  const ids = sequentialIds(n);
  const flat = new FlatIndex({ dim, threads: 8 });
  await flat.add(ids, ads);
  const hnsw = new AdIndex({ dim, kind: 'hnsw', hnswM: 8, efConstruction: 20, threads: 8 });
  await hnsw.upsert(ids, ads);
  const config = { format: 'cangen-scorer', version: 1, kind: 'mlp', userDim: dim, itemDim: dim, heads: ['click'], mlp: { hidden: [16] } };
  const scorer = await LearnedScorer.load(writeModel(config, randomTensors(config)), { threads: 8 });
  await scorer.add(ids, ads);
  const queries = randomVectors(64, dim, 2);

  const budget = 2;
  setLimits({ threads: budget });
  const before = osThreads();
  limits({ resetPeak: true });
  // Each call asks for 8 threads; 3 x poolSize calls keep every libuv worker busy.
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < poolSize; i++) {
    calls.push(flat.search(queries, 10, { threads: 8 }));
    calls.push(hnsw.search(queries, 10, { threads: 8 }));
    calls.push(scorer.search(queries, 10, { threads: 8 }));
  }
  let sampledMax = 0;
  const sampler = setInterval(() => (sampledMax = Math.max(sampledMax, limits().activeThreads)), 1);
  const results = await Promise.all(calls);
  clearInterval(sampler);
  assert.is(results.length, 3 * poolSize);
  const usage = limits();
  assert.ok(usage.peakThreads >= 1 && usage.peakThreads <= budget, `peak ${usage.peakThreads} threads in regions, budget ${budget}`);
  assert.ok(sampledMax <= budget, `sampled ${sampledMax} active threads`);
  // OpenMP keeps each worker's team threads for reuse: at most (budget - 1) per libuv worker
  // (it was up to 7 per worker when every call started the 8 it asked for).
  const grown = osThreads() - before;
  assert.ok(grown <= poolSize * (budget - 1) + 2, `${grown} new OS threads`);
  // HNSW visited tables kept between calls: at most one per budget thread, n bytes each.
  assert.ok(usage.hnswVisitedBytes <= budget * n, `${usage.hnswVisitedBytes} bytes of visited tables kept`);
});

threads.run();
