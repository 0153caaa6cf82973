// The cluster-init Job's script (shards/init-job.yaml mounts it from a ConfigMap): creates the
// cluster's log and dead-letter streams and its config and members buckets with initCluster().
// Settings come from the environment so that the Job, rendered with the shards, carries them.
// CommonJS, no build step: `node init-cluster.cjs` with cangen and nats resolvable (NODE_PATH).
'use strict';
const { connect } = require('nats');
const { initCluster } = require('cangen');

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`Expected the environment variable ${name} to be set`);
  return value;
}

async function main() {
  const servers = setting('NATS_URL', 'nats://127.0.0.1:4222').split(',');
  const options = {
    cluster: setting('CANGEN_CLUSTER'),
    shards: Number(setting('CANGEN_SHARDS')),
    dim: Number(setting('CANGEN_DIM')),
    metric: setting('CANGEN_METRIC', 'ip'),
    streamReplicas: Number(setting('CANGEN_STREAM_REPLICAS', '3')),
  };
  // Waits for NATS to come up rather than failing the Job while the JetStream pods start.
  const nc = await connect({ servers, name: `cangen-init-${options.cluster}`, waitOnFirstConnect: true, maxReconnectAttempts: -1 });
  try {
    const map = await initCluster(nc, options);
    console.log(`cluster ${options.cluster}: ${map.shards} shards, dim ${map.dim}, metric ${map.metric}, stream replicas ${options.streamReplicas}`);
  } finally {
    await nc.drain();
  }
}

main().catch((error) => {
  console.error(`cluster init failed: ${error.code ? `${error.code}: ` : ''}${error.message}`);
  process.exit(1);
});
