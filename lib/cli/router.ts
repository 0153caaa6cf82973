/**
 * `cangen router`: the router as its own process (docs/CLUSTER.md "Router"). It serves searches
 * that fan out over a cluster's shards, writes to its corpus log, Prometheus metrics and health
 * over HTTP, until SIGINT or SIGTERM, then drains: readiness turns 503, requests in flight finish.
 * It may start before the cluster exists; until a shard map appears, searches and writes answer
 * 503 ERR_NO_SHARD_MAP and /readyz 503.
 *
 * With --config FILE it runs the candidate pipeline instead (ClusterEngine): the service's API
 * (/v1/retrieve, /v1/ads with names, /v1/feedback ...) over the cluster's shards and catalog.
 */
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { hostname } from 'node:os';
import { ClusterEngine, clusterEngineDefaults } from '../cluster/cluster-engine';
import { ClusterMetrics } from '../cluster/metrics';
import { ClusterRouter, routerDefaults } from '../cluster/router';
import { createRouterServer } from '../cluster/router-http';
import { ConfigError } from '../orchestration/errors';
import type { CandidateEngine } from '../orchestration/engine';
import { buildEngine, createService, loadConfig, type CangenService, type ServiceConfig } from '../service';
import { stopOnSignal } from './on-signal';

export const routerUsage = `Usage: cangen router --cluster NAME [options]

  --nats URLS            NATS servers, comma-separated (nats://127.0.0.1:4222)
  --cluster NAME         the cluster to serve (made by cangen shard --init or initCluster())
  --host ADDR            address to listen on (127.0.0.1; 0.0.0.0 in a container)
  --port N               HTTP port (8080; 0: any free port)
  --deadline-ms N        default time budget of a search (${routerDefaults.deadlineMs})
  --hedge-after-ms N     ask a second replica of a shard that has not answered after N ms (0: never)
  --body-limit BYTES     largest request body (1048576)
  --max-in-flight N      requests served at once; more are answered 503 (256)
  --drain-delay-ms N     on SIGTERM, how long /readyz answers 503 before the listener closes (5000)
  --log                  log requests (JSON lines)
  --config FILE          run the candidate pipeline (cangen serve's API: /v1/retrieve, /v1/ads with
                         names, /v1/feedback ...) over the cluster, with the service settings of
                         FILE (its corpus must be 'empty': the cluster's catalog fills it; with a
                         dataDir a restart replays only the catalog after what it holds);
                         --deadline-ms is then each shard search's budget
                         (${clusterEngineDefaults.shardDeadlineMs}), kept under the scenarios' deadlines
  --router-id ID         this router's name for the catalog applier's lease (default: the host name)
  --shard-scorer         with --config: the scorer generator ranks with the shards' learned scorer
                         (cangen shard --scorer), blended by the request's scenario

  Writes (PUT/DELETE /v1/ads, PUT /v1/ads/attributes) need CANGEN_TOKEN in the environment (at
  least 16 characters) and an Authorization: Bearer <token> header; without it they are refused.`;

function whole(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`Expected a whole number for --${name} but received '${value}'`);
  return Number(value);
}

export async function runRouter(argv: string[], print: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nats: { type: 'string' }, cluster: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      'deadline-ms': { type: 'string' }, 'hedge-after-ms': { type: 'string' }, 'body-limit': { type: 'string' },
      'max-in-flight': { type: 'string' }, 'drain-delay-ms': { type: 'string' }, log: { type: 'boolean' }, help: { type: 'boolean' },
      config: { type: 'string' }, 'router-id': { type: 'string' }, 'shard-scorer': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help || !values.cluster) {
    print(routerUsage);
    return values.help ? 0 : 2;
  }
  const token = process.env.CANGEN_TOKEN || undefined;
  if (token !== undefined && token.length < 16) throw new Error('Expected a CANGEN_TOKEN of at least 16 characters');
  const options = {
    cluster: values.cluster,
    host: values.host ?? '127.0.0.1',
    port: whole(values.port, 'port', 8080),
    bodyLimit: whole(values['body-limit'], 'body-limit', 1024 * 1024),
    maxInFlight: Math.max(1, whole(values['max-in-flight'], 'max-in-flight', 256)),
    drainDelayMs: whole(values['drain-delay-ms'], 'drain-delay-ms', 5000),
    log: values.log ?? false,
    token,
  };
  const nc = await connect({ servers: (values.nats ?? 'nats://127.0.0.1:4222').split(','), name: `cangen-router-${values.cluster}`, maxReconnectAttempts: -1 });
  if (values.config !== undefined) {
    try {
      await runPipelineRouter(nc, values.cluster, values, print);
    } catch (error) {
      await nc.close();
      throw error;
    }
    return -1;
  }
  let router: ClusterRouter;
  let server: ReturnType<typeof createRouterServer>;
  let address: string;
  try {
    router = await ClusterRouter.start(nc, {
      cluster: values.cluster,
      deadlineMs: whole(values['deadline-ms'], 'deadline-ms', routerDefaults.deadlineMs),
      hedgeAfterMs: whole(values['hedge-after-ms'], 'hedge-after-ms', routerDefaults.hedgeAfterMs),
    });
    server = createRouterServer(nc, router, options);
    address = await server.start();
  } catch (error) {
    await nc.close(); // an open connection would keep the process alive
    throw error;
  }
  const map = router.shardMap;
  print(`cangen router for cluster ${values.cluster} listening on ${address} (${map ? `${map.shards} shards of dim ${map.dim}` : 'no shard map yet: waiting for one'}; ` +
    `corpus writes ${token ? 'need the token' : 'disabled: set CANGEN_TOKEN'})`);
  stopOnSignal('draining', async () => {
    await server.stop();
    // Cut off from NATS there is nothing to flush, and a drain would wait for the reconnection.
    if (server.natsDown) return nc.close();
    await router.close();
    await nc.drain();
  }, print);
  return -1; // keeps running
}

/** `cangen router --config FILE`: the service's API, with a ClusterEngine as its engine. */
async function runPipelineRouter(
  nc: Awaited<ReturnType<typeof connect>>,
  cluster: string,
  values: { config?: string; host?: string; port?: string; 'router-id'?: string; 'deadline-ms'?: string; 'hedge-after-ms'?: string; 'shard-scorer'?: boolean },
  print: (line: string) => void,
): Promise<void> {
  const overrides: Partial<ServiceConfig> = {};
  if (values.host !== undefined) overrides.host = values.host;
  if (values.port !== undefined) overrides.port = whole(values.port, 'port', 8080);
  const config = loadConfig({ file: values.config, overrides });
  if (config.corpus !== 'empty') {
    throw new ConfigError(`Expected corpus 'empty' in ${values.config} for a router: cluster '${cluster}''s catalog stream fills its corpus`);
  }
  const routerId = values['router-id'] ?? hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  let clustered: ClusterEngine | undefined;
  let engine: CandidateEngine;
  let service: CangenService;
  let address: string;
  try {
    const built = await buildEngine(config, {
      log: print,
      // The cluster gives the dim, metric, corpus and index; the config the rest.
      open: async ({ dim, index: _index, metric: _metric, ...options }) => {
        const opened = await ClusterEngine.open(nc, {
          ...options,
          cluster,
          routerId,
          shardDeadlineMs: whole(values['deadline-ms'], 'deadline-ms', clusterEngineDefaults.shardDeadlineMs),
          hedgeAfterMs: whole(values['hedge-after-ms'], 'hedge-after-ms', clusterEngineDefaults.hedgeAfterMs),
          shardScorer: values['shard-scorer'] ?? false,
          // Its corpus stopped: exit, so that the orchestrator restarts it and it replays the catalog.
          onFatal: (error) => {
            print(`cangen router ${routerId}: ${error.message}`);
            process.exit(1);
          },
        });
        clustered = opened;
        if (opened.engine.dim !== dim) throw new ConfigError(`Expected dim ${opened.engine.dim} (cluster '${cluster}''s shard map) in ${values.config} but it sets dim ${dim}`);
        return opened.engine;
      },
    });
    engine = built.engine;
    service = createService(engine, config, undefined, built.histories);
    new ClusterMetrics(service.metrics.registry).watchPipeline(clustered!);
    address = await service.start();
  } catch (error) {
    // Opened and then failed (a dim that disagrees, a port in use): leave the cluster, or the process stays up.
    await clustered?.close().catch(() => undefined);
    throw error;
  }
  const map = clustered!.router.shardMap!;
  print(`cangen router (pipeline) ${routerId} for cluster ${cluster} listening on ${address} (${map.shards} shards of dim ${map.dim}; ${engine.store.size} ads in the catalog; ` +
    `scenarios ${engine.pipeline.scenarios.names.join(', ')}; corpus writes ${config.token ? 'need the token' : 'disabled'})`);
  stopOnSignal('draining', async () => {
    await service.stop();
    await clustered!.close();
    await nc.drain();
  }, print);
}
