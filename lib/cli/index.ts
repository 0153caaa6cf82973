#!/usr/bin/env node
/** The cangen command line: serve, simulate, bench, shard, router, train. */
import { parseArgs } from 'node:util';
import { runSimulate, simulatorModel } from './simulate';
import { runServe } from './serve';

const usage = `Usage: cangen <command> [options]

Commands:
  serve      Run the HTTP service (config: --config file, CANGEN_* variables; see docs/ORCHESTRATION.md)
             --config FILE  --host ADDR  --port N  --ads N  --index flat|FACTORY  --nprobe N  --ef-search N
  simulate   Learned vs static quotas on the simulated marketplace, through the real pipeline
             --requests N (4000)  --ads N (20000)  --users N (2000)  --seed N (1)  --out DIR
             --model-dir DIR (results/simulate-model: the trained sequence models, reused)  --no-sequence
             --model unified|browsing|engagement|click|conversion (unified: one model, heads per label and scenario)
             --compare-models: every trained model against the untrained generators, per scenario (learned quotas)
  bench      Load test of the service (autocannon on loopback): see bench/load.ts
             --ads N (1000000)  --rate N (1000)  --seconds N (20)  --index FACTORY  --nprobe N (16)  --ef-search N (64)  --tag NAME  --out DIR (results)
             --sequence-model DIR  --scenario NAME  --history-users N (2000)  --event-rate N (50): retrieve by user id with stored histories
             --client autocannon|paced: autocannon (bursts: 32 paced connections) or evenly spaced open-loop sends
             --sweep: offered load up in steps (paced client) until p99 passes the limit or a request fails; table, JSON and SVG
               --variants before,batching,... (before)  --from N (250)  --step N (250)  --max-rate N (5000)  --step-seconds N (10)
               --p99-limit MS (50)  --profile: one more step per variant under a CPU profile (where the server's CPU goes)
  shard      One replica of a shard of a sharded corpus on NATS JetStream: see docs/CLUSTER.md (cangen shard --help)
             --nats URLS  --cluster NAME  --shard N  --replica-id ID  --kind flat|hnsw  --init S:DIM[:METRIC]  --metrics-port N
  router     The router of a sharded corpus as an HTTP service: searches over every shard, writes to its log
             (see docs/CLUSTER.md; cangen router --help)  --nats URLS  --cluster NAME  --port N (8080)  --deadline-ms N (200)  --hedge-after-ms N (0)
  train      Train a sequential user model (HSTU or SASRec) on an interaction log and export it: see docs/TRAINING.md
             --data FILE  --model hstu|sasrec  --out DIR  (cangen train --help lists every flag)
  help       This text`;

function integer(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`Expected a whole number for --${name} but received '${value}'`);
  return Number(value);
}

function clientOf(value: string | undefined): 'autocannon' | 'paced' {
  if (value === undefined || value === 'autocannon' || value === 'paced') return value ?? 'autocannon';
  throw new Error(`Expected autocannon or paced for --client but received '${value}'`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'train') {
    const { runTrain } = await import('./train');
    return runTrain(rest); // the Python trainer parses its own flags
  }
  if (command === 'shard') {
    const { runShard } = await import('./shard');
    return runShard(rest);
  }
  if (command === 'router') {
    const { runRouter } = await import('./router');
    return runRouter(rest);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, ads: { type: 'string' }, index: { type: 'string' },
      requests: { type: 'string' }, users: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
      rate: { type: 'string' }, seconds: { type: 'string' }, tag: { type: 'string' }, nprobe: { type: 'string' }, 'ef-search': { type: 'string' },
      'sequence-model': { type: 'string' }, client: { type: 'string' }, scenario: { type: 'string' }, 'history-users': { type: 'string' }, 'event-rate': { type: 'string' },
      'model-dir': { type: 'string' }, 'no-sequence': { type: 'boolean' }, model: { type: 'string' }, 'compare-models': { type: 'boolean' },
      sweep: { type: 'boolean' }, variants: { type: 'string' }, from: { type: 'string' }, step: { type: 'string' }, 'max-rate': { type: 'string' },
      'step-seconds': { type: 'string' }, 'p99-limit': { type: 'string' }, profile: { type: 'boolean' },
    },
    strict: true,
  });
  switch (command) {
    case 'serve': {
      const overrides: Record<string, unknown> = {};
      if (values.host) overrides.host = values.host;
      if (values.port) overrides.port = integer(values.port, 'port', 8080);
      if (values.ads) overrides.ads = integer(values.ads, 'ads', 20_000);
      if (values.index) overrides.index = values.index;
      if (values.nprobe) overrides.nprobe = integer(values.nprobe, 'nprobe', 16);
      if (values['ef-search']) overrides.efSearch = integer(values['ef-search'], 'ef-search', 64);
      await runServe(values.config, overrides);
      return -1; // keeps running
    }
    case 'simulate':
      await runSimulate({
        requests: integer(values.requests, 'requests', 4000),
        ads: integer(values.ads, 'ads', 20_000),
        users: integer(values.users, 'users', 2000),
        seed: integer(values.seed, 'seed', 1),
        out: values.out,
        sequence: !values['no-sequence'],
        model: simulatorModel(values.model),
        compareModels: values['compare-models'],
        modelDir: values['model-dir'] ?? 'results/simulate-model',
      });
      return 0;
    case 'bench': {
      const common = {
        ads: integer(values.ads, 'ads', 1_000_000),
        index: values.index ?? 'IVF1024,Flat',
        nprobe: integer(values.nprobe, 'nprobe', 16),
        efSearch: integer(values['ef-search'], 'ef-search', 64),
        out: values.out ?? 'results',
        tag: values.tag,
        sequenceModel: values['sequence-model'],
        scenario: values.scenario,
        historyUsers: integer(values['history-users'], 'history-users', 2000),
        eventRate: integer(values['event-rate'], 'event-rate', 50),
      };
      if (values.sweep) {
        const { runLoadSweep } = await import('./load-sweep');
        await runLoadSweep({
          ...common,
          variants: (values.variants ?? 'before').split(',').filter(Boolean),
          from: integer(values.from, 'from', 250),
          step: integer(values.step, 'step', 250),
          maxRate: integer(values['max-rate'], 'max-rate', 5000),
          stepSeconds: integer(values['step-seconds'] ?? values.seconds, 'step-seconds', 10),
          p99LimitMs: integer(values['p99-limit'], 'p99-limit', 50),
          profile: values.profile ?? false,
        });
        return 0;
      }
      const { runLoadBench } = await import('./bench');
      await runLoadBench({
        ...common,
        rate: integer(values.rate, 'rate', 1000),
        seconds: integer(values.seconds, 'seconds', 20),
        client: clientOf(values.client),
      });
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
      console.log(usage);
      return 0;
    default:
      console.error(`Unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

if (require.main === module && process.argv[2] !== 'bench-server') {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error: Error) => {
      console.error(`cangen: ${error.message}`);
      process.exitCode = 1;
    },
  );
}

// The load test's server child re-enters here.
if (process.argv[2] === 'bench-server') void import('./bench');
