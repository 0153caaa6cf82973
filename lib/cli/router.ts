/**
 * `cangen router`: the router as its own process (docs/CLUSTER.md "Router"). It serves searches
 * that fan out over a cluster's shards, writes to its corpus log, Prometheus metrics and health
 * over HTTP, until SIGINT or SIGTERM, then drains: readiness turns 503, requests in flight finish.
 * It may start before the cluster exists; until a shard map appears, searches and writes answer
 * 503 ERR_NO_SHARD_MAP and /readyz 503.
 */
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { ClusterRouter, routerDefaults } from '../cluster/router';
import { createRouterServer } from '../cluster/router-http';
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
