/**
 * `cangen shard`: one shard replica as its own process (docs/CLUSTER.md). It joins a cluster made
 * by initCluster() (or `cangen shard --init`), replays its shard's log, registers and answers
 * shard searches until SIGINT or SIGTERM, then leaves cleanly. Its state is the log: a replica
 * killed and started again with the same id replays and serves again.
 */
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { AdIndex, type IndexKind } from '../ad-index';
import { ClusterMetrics, initCluster, ShardReplica } from '../cluster';
import { LearnedScorer } from '../scorer';
import { readShardMap, type Placement, type ShardMap } from '../cluster/shard-map';
import { retryTransient } from '../cluster/transient';
import type { Metric } from '../metric';
import { stopOnSignal } from './on-signal';

export const shardUsage = `Usage: cangen shard --cluster NAME --shard N --replica-id ID [options]

  --nats URLS        NATS servers, comma-separated (nats://127.0.0.1:4222)
  --cluster NAME     the cluster (names its streams and buckets)
  --shard N          the shard this replica serves (0 to shards-1)
  --replica-id ID    unique among the cluster's replicas (letters, digits, '_', '-')
  --kind KIND        the shard's index kind: flat (exact; default), hnsw, ivf-flat, ivf-sq8 or ivf-pq
  --nlist N, --nprobe N, --pq-bytes N   IVF settings (AdIndex options of the same names)
  --train-sample N   IVF: train on the first N live ads of the shard's log (default 100000), holding the
                     log until then; --train-min N: train on fewer once caught up (default 1000).
                     A replica that loads a snapshot starts trained.
  --scorer DIR       a learned scorer's model directory (docs/SCORERS.md; itemDim = the cluster's dim):
                     the replica also answers scorer searches over its shard's ads
  --init S:DIM[:METRIC[:PLACEMENT]]  create the cluster first if it does not exist (S shards, DIM dimensions,
                     metric ip|l2|cosine, placement ad|advertiser: initCluster's options)
  --metrics-port N   serve Prometheus metrics on http://0.0.0.0:N/metrics (lag, applied sequence, dead letters, searches,
                     snapshot age), and probes: /healthz (the process runs), /readyz (200 while the replica serves)
  --snapshot-every-s S   snapshot the shard's index to JetStream every S seconds when it changed and this
                     replica holds the shard's snapshot lease (default 300; 0: never; starts load one either way)
  --snapshots-keep N snapshots kept per shard (default 2)
  --trim-log         after each snapshot, purge the shard's log up to the oldest snapshot kept (never past
                     what a registered replica applied); replicas then start from snapshots only
  --snapshot-dir DIR where snapshot files are written and read locally (default the OS's temporary directory)`;

async function serveMetrics(replica: ShardReplica, port: string, print: (line: string) => void): Promise<Server> {
  if (!/^\d+$/.test(port)) throw new Error(`Expected a port number for --metrics-port but received '${port}'`);
  const metrics = new ClusterMetrics();
  metrics.watchReplica(replica);
  const server = createServer((request, response) => {
    // Probes: /healthz while the process runs (also during a long catch-up); /readyz while the
    // replica serves (caught up with its shard's log), so a rolling restart waits for it.
    if (request.url === '/healthz') return void response.writeHead(200).end('ok\n');
    if (request.url === '/readyz') return void response.writeHead(replica.health === 'serving' ? 200 : 503).end(`${replica.health}\n`);
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    metrics.text().then((text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text), () => response.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(port), resolve));
  print(`metrics on port ${(server.address() as { port: number }).port}`);
  return server;
}

export async function runShard(argv: string[], print: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nats: { type: 'string' }, cluster: { type: 'string' }, shard: { type: 'string' }, 'replica-id': { type: 'string' },
      kind: { type: 'string' }, init: { type: 'string' }, 'metrics-port': { type: 'string' }, help: { type: 'boolean' },
      'snapshot-every-s': { type: 'string' }, 'snapshots-keep': { type: 'string' }, 'snapshot-dir': { type: 'string' }, scorer: { type: 'string' }, 'trim-log': { type: 'boolean' },
      nlist: { type: 'string' }, nprobe: { type: 'string' }, 'pq-bytes': { type: 'string' }, 'train-sample': { type: 'string' }, 'train-min': { type: 'string' },
    },
    strict: true,
  });
  if (values.help || !values.cluster || values.shard === undefined || !values['replica-id']) {
    print(shardUsage);
    return values.help ? 0 : 2;
  }
  const whole = (flag: string, value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value)) throw new Error(`Expected a whole number for --${flag} but received '${value}'`);
    return Number(value);
  };
  const shard = whole('shard', values.shard, 0);
  const snapshots = {
    everyMs: whole('snapshot-every-s', values['snapshot-every-s'], 300) * 1000,
    keep: whole('snapshots-keep', values['snapshots-keep'], 2),
    ...(values['snapshot-dir'] ? { dir: values['snapshot-dir'] } : {}),
    ...(values['trim-log'] ? { trimLog: true } : {}),
  };
  const kind = (values.kind ?? 'flat') as IndexKind;
  const kinds: IndexKind[] = ['flat', 'hnsw', 'ivf-flat', 'ivf-sq8', 'ivf-pq'];
  if (!kinds.includes(kind)) throw new Error(`Expected one of ${kinds.join(', ')} for --kind but received '${values.kind}'`);
  const ivf = {
    ...(values.nlist !== undefined ? { nlist: whole('nlist', values.nlist, 0) } : {}),
    ...(values.nprobe !== undefined ? { nprobe: whole('nprobe', values.nprobe, 0) } : {}),
    ...(values['pq-bytes'] !== undefined ? { pqBytes: whole('pq-bytes', values['pq-bytes'], 0) } : {}),
  };
  const train = {
    ...(values['train-sample'] !== undefined ? { sample: whole('train-sample', values['train-sample'], 0) } : {}),
    ...(values['train-min'] !== undefined ? { minimum: whole('train-min', values['train-min'], 0) } : {}),
  };
  const nc = await connect({ servers: (values.nats ?? 'nats://127.0.0.1:4222').split(','), name: `cangen-shard-${values['replica-id']}`, maxReconnectAttempts: -1 });
  let replica: ShardReplica;
  let map: ShardMap;
  try {
    if (values.init) {
      const [shards, dim, metric, placement] = values.init.split(':');
      await initCluster(nc, {
        cluster: values.cluster, shards: Number(shards), dim: Number(dim), ...(metric ? { metric: metric as Metric } : {}), ...(placement ? { placement: placement as Placement } : {}),
      });
    }
    // Patient through a JetStream failover, like the replica's own start.
    map = await retryTransient(() => readShardMap(nc, values.cluster!), 30_000, (error) => print(`reading the shard map failed (${error.message}); retrying`));
    replica = await ShardReplica.start(nc, {
      cluster: values.cluster,
      shard,
      replicaId: values['replica-id'],
      index: new AdIndex({ dim: map.dim, metric: map.metric, kind, ...ivf }),
      train,
      ...(values.scorer ? { scorer: await LearnedScorer.load(values.scorer) } : {}),
      snapshots,
      // Behind a trimmed log: the replica has left the cluster; exit so that the orchestrator restarts it from a snapshot.
      onFatal: (error) => {
        print(`cangen shard: ${error.message}`);
        void nc.close().finally(() => process.exit(1));
      },
      log: print,
    });
  } catch (error) {
    await nc.close(); // an open connection would keep the process alive
    throw error;
  }
  // Metrics first: whoever waits for the start line may scrape at once.
  const metricsServer = values['metrics-port'] === undefined ? undefined : await serveMetrics(replica, values['metrics-port'], print);
  const from = replica.stats().startedFromSnapshot;
  print(`cangen shard ${replica.shard}/${map.shards} replica ${replica.replicaId} started (${kind} index, dim ${map.dim}, ${replica.health}${from > 0 ? `, from the snapshot at sequence ${from}` : ''})`);
  stopOnSignal('leaving the cluster', async () => {
    metricsServer?.close();
    await replica.close();
    await nc.drain();
  }, print);
  return -1; // keeps running
}
