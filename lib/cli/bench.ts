/**
 * `cangen bench`: a load test of the service. The server runs in a child process (so the load
 * generator does not share its event loop) over the simulator's marketplace; autocannon sends
 * retrieve requests at a fixed rate on loopback for a bounded time and count. Results go to
 * <out>/load-<date>.json with the machine and date.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { Session } from 'node:inspector';
import { extname, join } from 'node:path';
import { machine } from '../simulator/report';
import { buildEngine, createService, loadConfig, type ServiceConfig } from '../service';
import { simulatorSource } from '../simulator/service-corpus';
import { defaultScenarios } from '../orchestration/engine';
import { benchUser, seedHistories } from './bench-histories';
import { mainThreadCpuMs, summarizeProfile, type CpuProfile } from './cpu-profile';
import { pacedLoad, type LoadSummary } from './paced-load';
import { progressBar } from './progress';

export interface LoadBenchArgs {
  ads: number;
  rate: number;
  seconds: number;
  index: string;
  /** Search effort of the index (the service's nprobe / efSearch settings). */
  nprobe: number;
  efSearch: number;
  out: string;
  /** Appended to the file name: load-<date>-<tag>.json. */
  tag?: string;
  /**
   * A trained user model: the server adds the sequence generator (first in every default scenario,
   * and alone in the scenario 'for-you'), bench users get stored histories before the load, and
   * `eventRate` new events a second arrive during it.
   */
  sequenceModel?: string;
  /** Every request's scenario (default: home, home, search, related in turn). */
  scenario?: string;
  /** Users the requests name (default 2000); with a sequence model, each has a stored history. */
  historyUsers?: number;
  eventRate?: number;
  /** 'autocannon' (default: 32 connections, each paced, so requests leave in bursts) or 'paced' (open loop, evenly spaced; paced-load.ts). */
  client?: 'autocannon' | 'paced';
  /** Service config overrides applied last, and extra environment of the server (a sweep variant's; see load-variants.ts). */
  overrides?: Partial<ServiceConfig>;
  env?: Record<string, string>;
}

/** Writes (the bench users' events) need a token; the server listens on loopback for this run only. */
export const benchToken = 'cangen-bench-loopback-token';

/** The scenario served by the sequence generator alone. */
const sequenceOnly = { name: 'for-you', generators: ['sequence'], k: 200 };

const childFlag = 'CANGEN_BENCH_SERVER';

type Autocannon = (options: Record<string, unknown>) => Promise<LoadSummary>;

export function serverConfig(args: Pick<LoadBenchArgs, 'ads' | 'index' | 'nprobe' | 'efSearch' | 'sequenceModel' | 'overrides'>): ServiceConfig {
  // The ads are the simulator's, in the model's dim (their embeddings are not the model's item
  // embeddings: the cost of a search does not depend on them).
  const sequence = args.sequenceModel
    ? {
        sequenceModel: args.sequenceModel,
        token: benchToken,
        sequenceSessionBytes: 2 ** 30,  // every bench user's session fits (about 200 KiB each at maxLen 200, dim 64)
        dim: (JSON.parse(readFileSync(join(args.sequenceModel, 'config.json'), 'utf8')) as { dim: number }).dim,
        scenarios: [...defaultScenarios.map((s) => ({ ...s, generators: ['sequence', ...s.generators] })), sequenceOnly],
      }
    : {};
  return loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', ads: args.ads, index: args.index, nprobe: args.nprobe, efSearch: args.efSearch, embedder: { kind: 'hashed', dim: 64 }, saveIntervalMs: 0, drainDelayMs: 0, ...sequence, ...args.overrides },
  });
}

/** Mean seconds x 1000 of a Prometheus histogram's series matching `labels`, over all of them. */
function meanMs(metrics: string, name: string, labels = ''): number {
  const total = (suffix: string) =>
    [...metrics.matchAll(new RegExp(`${name}_${suffix}\\{[^}]*${labels}[^}]*\\} ([0-9.e+-]+)`, 'g'))].reduce((a, m) => a + Number(m[1]), 0);
  const count = total('count');
  return count ? (total('sum') / count) * 1000 : NaN;
}

/** In the child: build, listen, report the address, serve until told to stop. */
async function serveChild(): Promise<void> {
  const args = JSON.parse(process.env[childFlag]!) as LoadBenchArgs;
  // Run from TypeScript (tsx), every formatted Error stack would be source-mapped (about 40 us
  // each; the native wrappers now format theirs only on failure). The built service (dist/) does
  // not map either.
  process.setSourceMapsEnabled?.(false);
  const t0 = performance.now();
  const config = serverConfig(args);
  const { engine, histories } = await buildEngine(config, { source: config.corpus === 'simulator' ? simulatorSource(config) : undefined, onProgress: progressBar('loading ads') });
  const service = createService(engine, serverConfig(args), undefined, histories);
  const url = await service.start();
  const loadSeconds = (performance.now() - t0) / 1000;
  // Memory after loading, after a short idle pause (no forced GC: the heap may still hold some of
  // the load's garbage).
  await new Promise((r) => setTimeout(r, 200));
  const m = process.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  process.send!({ url, loadSeconds, memoryMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), arrayBuffersMiB: mib(m.arrayBuffers) });
  let profiler: Session | undefined;
  const post = <T>(method: string) => new Promise<T>((resolve, reject) => profiler!.post(method, (error, result) => (error ? reject(error) : resolve(result as T))));
  process.on('message', async (message) => {
    const { type } = message as { type: ServerRequest };
    if (type === 'cpu') {
      process.send!({ type, cpu: process.cpuUsage(), mainThreadMs: mainThreadCpuMs() });
    } else if (type === 'profile-start') {
      profiler = new Session();
      profiler.connect();
      await post('Profiler.enable');
      await post('Profiler.start');
      process.send!({ type });
    } else if (type === 'profile-stop') {
      const { profile } = await post<{ profile: CpuProfile }>('Profiler.stop');
      profiler!.disconnect();
      process.send!({ type, categories: summarizeProfile(profile) });
    } else if (type === 'stop') {
      await service.stop();
      process.exit(0);
    }
  });
}

/** What the parent asks the server child (answered with a message of the same type). */
type ServerRequest = 'cpu' | 'profile-start' | 'profile-stop' | 'stop';

export interface ServerReady {
  url: string;
  loadSeconds: number;
  memoryMiB: number;
  heapUsedMiB: number;
  arrayBuffersMiB: number;
}

/** The service running in a child process for a load test. */
export interface BenchServer {
  ready: ServerReady;
  /** The child's CPU time so far: process.cpuUsage() (all threads, us) and its main thread's (ms). */
  cpu(): Promise<{ cpu: NodeJS.CpuUsage; mainThreadMs: number }>;
  /** A V8 CPU profile of the child's main thread between the two calls, summed by category. */
  startProfile(): Promise<void>;
  stopProfile(): Promise<ReturnType<typeof summarizeProfile>>;
  stop(): Promise<void>;
}

/** Seconds the child may take to answer (a profile of a busy step takes the longest to hand over). */
const answerSeconds = 60;

function ask<T>(child: ChildProcess, type: ServerRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      if ((m as { type?: string }).type !== type) return;
      done();
      resolve(m as T);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`the server exited with code ${code} while asked for '${type}'`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the server did not answer '${type}' within ${answerSeconds} s`));
    }, answerSeconds * 1000);
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send({ type });
  });
}

/** Forks the server child (this file, re-entered through the CLI) and waits until it listens. */
export async function startBenchServer(args: LoadBenchArgs): Promise<BenchServer> {
  const script = join(__dirname, `index${extname(__filename)}`);
  const child = fork(script, ['bench-server'], { env: { ...process.env, ...args.env, [childFlag]: JSON.stringify(args) }, execArgv: process.execArgv });
  const stop = async () => {
    if (child.exitCode === null && child.connected) {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      // A server that does not drain within the answer time is killed: the run goes on.
      const timer = setTimeout(() => child.kill('SIGKILL'), answerSeconds * 1000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    const ready = await new Promise<ServerReady>((resolve, reject) => {
      child.once('message', (m) => resolve(m as ServerReady));
      child.once('exit', (code) => reject(new Error(`the server exited with code ${code} before it was ready`)));
    });
    return {
      ready,
      cpu: () => ask(child, 'cpu'),
      startProfile: () => ask(child, 'profile-start'),
      stopProfile: async () => (await ask<{ categories: ReturnType<typeof summarizeProfile> }>(child, 'profile-stop')).categories,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Retrieve request bodies: bench users in a fixed stride, the scenarios in turn. */
export function requestBodies(scenarios: readonly string[], users: number): () => string {
  let n = 0;
  return () => {
    n++;
    return JSON.stringify({ userId: benchUser((n * 7919) % users), scenario: scenarios[n % scenarios.length] });
  };
}

export async function runLoadBench(args: LoadBenchArgs, print: (line: string) => void = console.log) {
  let autocannon: Autocannon;
  try {
    // A devDependency without bundled types: the few fields used are typed below.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    autocannon = require('autocannon') as Autocannon;
  } catch {
    throw new Error('The load test needs autocannon: npm install --save-dev autocannon');
  }
  const server = await startBenchServer(args);
  const { ready } = server;
  try {
    print(`server ready at ${ready.url} after ${ready.loadSeconds.toFixed(1)} s (${args.ads.toLocaleString('en-US')} ads, index ${args.index}, nprobe ${args.nprobe}, efSearch ${args.efSearch}; RSS ${ready.memoryMiB} MiB, JS heap ${ready.heapUsedMiB} MiB)`);
    const scenarios = args.scenario ? [args.scenario] : ['home', 'home', 'search', 'related'];
    const users = args.historyUsers ?? 2000;
    const config = serverConfig(args);
    const histories = args.sequenceModel
      ? await seedHistories(ready.url, benchToken, args.sequenceModel, users, config.historyLength, config.eventsMaxBatch)
      : undefined;
    if (histories) print(`stored ${histories.seeded.toLocaleString('en-US')} events for ${users} users`);
    const body = requestBodies(scenarios, users);
    const run = async (rate: number, seconds: number) =>
      args.client === 'paced' ? pacedLoad(`${ready.url}/v1/retrieve`, rate, seconds, body) : autocannon({
        url: ready.url,
        connections: 32,
        duration: seconds,
        amount: rate * seconds,
        overallRate: rate,
        timeout: 5,
        requests: [
          {
            method: 'POST',
            path: '/v1/retrieve',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req: Record<string, unknown>) => ({ ...req, body: body() }),
          },
        ],
      });
    // Warm-up: JIT, caches, allocator priors, and a first encode of every user's history.
    await run(Math.min(200, args.rate), Math.max(3, Math.ceil(users / 200)));
    const loadBefore = loadavg();
    const trickle = histories?.trickle(args.eventRate ?? 50);
    const result = await run(args.rate, args.seconds);
    const eventsPosted = await trickle?.stop();
    const loadAfter = loadavg();
    const metrics = await fetch(`${ready.url}/metrics`).then((r) => r.text());
    const summary = {
      machine: machine(),
      server: {
        ads: args.ads,
        index: args.index,
        nprobe: args.nprobe,
        efSearch: args.efSearch,
        k: { home: 200, search: 200, related: 100 },
        loadSeconds: ready.loadSeconds,
        // RSS, JS heap in use and ArrayBuffer memory after loading, before the load.
        memoryMiB: ready.memoryMiB,
        heapUsedMiB: ready.heapUsedMiB,
        arrayBuffersMiB: ready.arrayBuffersMiB,
      },
      load: {
        targetRate: args.rate, seconds: args.seconds, scenarios, users,
        tool: args.client === 'paced' ? 'paced open loop (evenly spaced sends, latency from the scheduled time, loopback)' : 'autocannon 8 (32 connections, fixed overall rate, loopback)',
      },
      sequence: args.sequenceModel
        ? { model: args.sequenceModel, seededEvents: histories!.seeded, eventRate: args.eventRate ?? 50, eventsPosted, generatorMeanMs: meanMs(metrics, 'cangen_generator_duration_seconds', 'generator="sequence"') }
        : undefined,
      // 1, 5 and 15-minute load averages just before and just after the measured run: on a
      // 2-core machine anything above ~2 means other work competed for the cores.
      loadAverage: { before: loadBefore.map((x) => Number(x.toFixed(2))), after: loadAfter.map((x) => Number(x.toFixed(2))) },
      results: {
        requests: result.requests.total,
        rps: result.requests.average,
        latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
      },
      generatorTimeouts: [...metrics.matchAll(/cangen_generator_duration_seconds_count\{scenario="(\w+)",generator="([\w-]+)",status="timeout"\} (\d+)/g)].map((m) => ({ scenario: m[1], generator: m[2], count: Number(m[3]) })),
      // Time inside the pipeline (server side), from the service's own histogram.
      pipelineMeanMs: meanMs(metrics, 'cangen_retrieve_duration_seconds'),
      goal: { p99Ms: 20, rate: args.rate, met: result.latency.p99 < 20 && result.requests.average >= 0.95 * args.rate && result.non2xx === 0 },
    };
    print(`load average before ${summary.loadAverage.before.join(' ')}, after ${summary.loadAverage.after.join(' ')}`);
    print(`pipeline mean ${summary.pipelineMeanMs.toFixed(2)} ms; rate ${summary.results.rps.toFixed(0)} req/s (target ${args.rate}), latency p50 ${result.latency.p50} ms, p90 ${result.latency.p90} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms; non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}`);
    await mkdir(args.out, { recursive: true });
    const file = join(args.out, `load-${new Date().toISOString().slice(0, 10)}${args.tag ? `-${args.tag}` : ''}.json`);
    await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
    print(`wrote ${file}`);
    return summary;
  } finally {
    await server.stop();
  }
}

if (process.env[childFlag] && process.argv[2] === 'bench-server') void serveChild();
