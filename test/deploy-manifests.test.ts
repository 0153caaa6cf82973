/**
 * The Kubernetes manifests in deploy/kubernetes: every file parses as YAML (PyYAML, an independent
 * parser), the committed ads/ folder is exactly what render-cluster.mjs writes, each shard's
 * StatefulSet, PodDisruptionBudget and anti-affinity name that shard and no other, the args pass
 * only flags the commands document, the replicas' probe paths answer on a real `cangen shard`'s
 * metrics port, and the init Job's script creates a cluster on a real nats-server.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readShardMap } from '../lib/cluster';
import { clusterNames } from '../lib/cluster/names';
import { shardUsage } from '../lib/cli/shard';
import { loadConfig } from '../lib/service';
import { freePort, NatsDeployment, natsServerMissing } from './helpers/nats-server';
import { shardProcess } from './helpers/shard-process';

const root = join(__dirname, '..');
const k8s = join(root, 'deploy', 'kubernetes');
const renderScript = join(k8s, 'render-cluster.mjs');

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Every document of each YAML file, read by PyYAML (python3-yaml: a dependency of python3-torch,
 * which .ci/run installs), in one python3 process for all the files.
 */
function readYamls(files: string[]): Doc[][] {
  const script = 'import json, sys, yaml\nprint(json.dumps([[d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:]]))';
  const run = spawnSync('python3', ['-c', script, ...files], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new Error(`Could not parse ${files.join(', ')} with python3's yaml module: ${run.error?.message ?? run.stderr.trim()} (apt-get install python3-yaml)`);
  }
  return JSON.parse(run.stdout) as Doc[][];
}

const readYaml = (file: string): Doc[] => readYamls([file])[0]!;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : []));
}

function render(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [renderScript, ...args], { encoding: 'utf8' });
}

/** The `--flags` a usage text names. */
const flagsOf = (usage: string) => new Set(usage.match(/--[a-z][a-z-]*/g) ?? []);

/**
 * `cangen router`'s flags: its usage text once lib/cli/router.ts exists; until then the names
 * agreed for it, and --host (the router listens on loopback unless told otherwise).
 */
async function routerFlags(): Promise<Set<string>> {
  const file = join(root, 'lib', 'cli', 'router.ts');
  if (!existsSync(file)) return new Set(['--cluster', '--nats', '--host', '--port', '--deadline-ms', '--hedge-after-ms', '--config']);
  const module = (await import(file)) as { routerUsage?: unknown };
  if (typeof module.routerUsage !== 'string') throw new Error('lib/cli/router.ts exports no routerUsage string to check the router manifest against');
  return flagsOf(module.routerUsage);
}

/** The value after `flag` in an args list. */
function argOf(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

function manifestsOf(dir: string): Doc[] {
  return readYamls(yamlFiles(dir)).flat();
}

const byKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);

/** The invariants of one rendered cluster folder; returns its shard StatefulSets. */
function checkCluster(docs: Doc[], expected: { cluster: string; shards: number; replicas: number }, shardFlags: Set<string>): Doc[] {
  const sets = byKind(docs, 'StatefulSet');
  const pdbs = byKind(docs, 'PodDisruptionBudget');
  assert.is(sets.length, expected.shards, 'one StatefulSet per shard');
  const seen = new Set<number>();
  for (const set of sets) {
    const name: string = set.metadata.name;
    const shard = Number(/-shard-(\d+)$/.exec(name)?.[1]);
    assert.ok(Number.isInteger(shard), `${name}: named -shard-N`);
    seen.add(shard);
    const labels = { 'cangen/cluster': expected.cluster, 'cangen/shard': String(shard) };
    for (const [where, got] of [['metadata.labels', set.metadata.labels], ['selector', set.spec.selector.matchLabels], ['template labels', set.spec.template.metadata.labels]] as const) {
      for (const [key, value] of Object.entries(labels)) assert.is(got[key], value, `${name} ${where} ${key}`);
    }
    assert.ok(set.spec.replicas >= 2, `${name}: 2 or more replicas`);
    assert.is(set.spec.replicas, expected.replicas, `${name}: replicas`);
    const pod = set.spec.template.spec;
    const [container] = pod.containers;
    const args: string[] = container.args;
    assert.is(args[0], 'shard', `${name}: runs cangen shard`);
    for (const arg of args.filter((a) => a.startsWith('--'))) assert.ok(shardFlags.has(arg), `${name}: '${arg}' is not a flag of cangen shard (${[...shardFlags].join(' ')})`);
    assert.is(argOf(args, '--shard'), String(shard), `${name}: --shard`);
    assert.is(argOf(args, '--cluster'), expected.cluster, `${name}: --cluster`);
    assert.is(argOf(args, '--replica-id'), '$(POD_NAME)', `${name}: the pod's stable name is the replica id`);
    assert.is(container.env.find((e: Doc) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', `${name}: POD_NAME from the pod's name`);
    const metricsPort = argOf(args, '--metrics-port');
    assert.is(set.spec.template.metadata.annotations['prometheus.io/port'], metricsPort, `${name}: scrape port is the metrics port`);
    assert.is(set.spec.template.metadata.annotations['prometheus.io/scrape'], 'true');
    assert.is(String(container.ports[0].containerPort), metricsPort, `${name}: container port`);
    assert.ok(pod.terminationGracePeriodSeconds >= 30, `${name}: time for a clean leave`);
    const startup = container.startupProbe;
    assert.ok(startup.periodSeconds * startup.failureThreshold >= 600, `${name}: 10 minutes or more to load a snapshot before liveness applies`);
    const anti = pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    assert.equal(anti, [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } }], `${name}: replicas of the shard on different nodes`);
    assert.ok(container.resources.requests.memory && container.resources.limits.memory === container.resources.requests.memory, `${name}: memory request = limit`);
    const pdb = pdbs.find((p) => p.metadata.name === name);
    assert.ok(pdb, `${name}: has a PodDisruptionBudget`);
    assert.is(pdb!.spec.maxUnavailable, 1, `${name}: PDB maxUnavailable`);
    assert.equal(pdb!.spec.selector.matchLabels, set.spec.selector.matchLabels, `${name}: PDB selects the shard's pods`);
  }
  assert.equal([...seen].sort((a, b) => a - b), Array.from({ length: expected.shards }, (_, i) => i), 'shards 0..S-1, each once');
  const [job] = byKind(docs, 'Job');
  const env = Object.fromEntries(job!.spec.template.spec.containers[0].env.map((e: Doc) => [e.name, e.value]));
  assert.is(env.CANGEN_SHARDS, String(expected.shards), 'the init Job creates S shards');
  assert.is(env.CANGEN_CLUSTER, expected.cluster, 'the init Job names the cluster');
  assert.is(env.CANGEN_STREAM_REPLICAS, '3', 'streams replicated on the 3 JetStream servers');
  return sets;
}

const manifests = suite('deploy: Kubernetes manifests');

manifests('every YAML file parses, and the committed ads/ folder is the renderer\'s output', () => {
  const files = yamlFiles(join(root, 'deploy'));
  assert.ok(files.length >= 9, `found ${files.length} YAML files`);
  readYamls(files).forEach((docs, i) => assert.ok(docs.length >= 1, `${files[i]}: at least one document`));
  const out = mkdtempSync(join(tmpdir(), 'cangen-render-'));
  try {
    const run = render(['--out', out]);
    assert.is(run.status, 0, run.stderr);
    const committed = join(k8s, 'ads');
    assert.equal(readdirSync(out).sort(), readdirSync(committed).sort(), 'same files');
    for (const name of readdirSync(out)) assert.fixture(readFileSync(join(committed, name), 'utf8'), readFileSync(join(out, name), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

manifests('shards: each StatefulSet, PDB and anti-affinity is its own shard\'s; args are flags cangen shard accepts', () => {
  const docs = manifestsOf(join(k8s, 'ads'));
  checkCluster(docs, { cluster: 'ads', shards: 3, replicas: 2 }, flagsOf(shardUsage));
  const service = byKind(docs, 'Service').find((s) => s.spec.clusterIP === 'None');
  assert.is(service?.metadata.name, byKind(docs, 'StatefulSet')[0]!.spec.serviceName, 'the StatefulSets name the headless Service');
});

manifests('another rendering: more shards and replicas, a new cluster name, stale shard files removed', () => {
  const out = mkdtempSync(join(tmpdir(), 'cangen-render-'));
  try {
    writeFileSync(join(out, 'shard-9.yaml'), 'stale: true\n');
    const run = render(['--out', out, '--shards', '5', '--replicas', '3', '--cluster', 'ads_v2', '--dim', '128']);
    assert.is(run.status, 0, run.stderr);
    assert.not.ok(existsSync(join(out, 'shard-9.yaml')), 'a shard file of an earlier rendering is removed');
    const docs = manifestsOf(out);
    const sets = checkCluster(docs, { cluster: 'ads_v2', shards: 5, replicas: 3 }, flagsOf(shardUsage));
    assert.is(sets[0]!.metadata.name.startsWith('cangen-ads-v2-shard-'), true, 'object names are DNS labels');
    const kustomization = readYaml(join(out, 'kustomization.yaml'))[0]!;
    assert.equal(new Set(kustomization.resources), new Set(readdirSync(out).filter((f) => f !== 'kustomization.yaml')), 'kustomization lists every file');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  for (const [args, message] of [[['--replicas', '1'], /2 or more replicas/], [['--cluster', 'a.b'], /cluster name/], [['--shards', 'x'], /whole number/]] as const) {
    const run = render([...args, '--out', join(tmpdir(), 'cangen-render-never')]);
    assert.is(run.status, 2, `${args.join(' ')} refused`);
    assert.match(run.stderr, message);
  }
});

manifests('routers: Deployment and Service; probes /readyz and /healthz; args are flags cangen router accepts', async () => {
  const docs = manifestsOf(join(k8s, 'ads'));
  const [deployment] = byKind(docs, 'Deployment');
  const container = deployment!.spec.template.spec.containers[0];
  const args: string[] = container.args;
  assert.is(args[0], 'router');
  const flags = await routerFlags();
  for (const arg of args.filter((a) => a.startsWith('--'))) assert.ok(flags.has(arg), `'${arg}' is not a flag of cangen router (${[...flags].join(' ')})`);
  assert.is(argOf(args, '--cluster'), 'ads');
  assert.is(argOf(args, '--deadline-ms'), '200');
  assert.is(argOf(args, '--hedge-after-ms'), '20');
  assert.is(argOf(args, '--host'), '0.0.0.0', 'listens beyond loopback: probes and the Service reach it');
  const port = Number(argOf(args, '--port'));
  assert.is(container.ports[0].containerPort, port, 'container port is --port');
  assert.is(container.readinessProbe.httpGet.path, '/readyz');
  assert.is(container.livenessProbe.httpGet.path, '/healthz');
  assert.is(deployment!.spec.template.metadata.annotations['prometheus.io/port'], String(port), 'metrics on the service port');
  const service = byKind(docs, 'Service').find((s) => s.metadata.name === deployment!.metadata.name);
  assert.equal(service?.spec.selector, deployment!.spec.selector.matchLabels, 'the Service selects the routers');
  assert.is(service?.spec.ports[0].targetPort, container.ports[0].name);
  const shardArgs: string[] = byKind(docs, 'StatefulSet')[0]!.spec.template.spec.containers[0].args;
  assert.is(argOf(args, '--nats'), argOf(shardArgs, '--nats'), 'routers and replicas use the same NATS');
});

manifests('--pipeline: routers run cangen router --config with a ConfigMap the service accepts, named by their pod', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cangen-k8s-pipeline-'));
  try {
    const run = render(['--pipeline', '--dim', '32', '--out', out]);
    assert.is(run.status, 0, run.stderr);
    const docs = manifestsOf(out);
    const [deployment] = byKind(docs, 'Deployment');
    const pod = deployment!.spec.template.spec;
    const container = pod.containers[0];
    const args: string[] = container.args;
    const flags = await routerFlags();
    for (const arg of args.filter((a) => a.startsWith('--'))) assert.ok(flags.has(arg), `'${arg}' is not a flag of cangen router`);
    assert.is(argOf(args, '--deadline-ms'), '25', 'each shard search under the scenarios\' deadlines');
    assert.is(argOf(args, '--router-id'), '$(POD_NAME)');
    assert.is(container.env.find((e: Doc) => e.name === 'POD_NAME')?.valueFrom.fieldRef.fieldPath, 'metadata.name');
    // --config names a file of the mounted ConfigMap, and the service's own loader accepts it.
    const configPath = argOf(args, '--config')!;
    const mount = container.volumeMounts.find((m: Doc) => configPath.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `a volume mounted where ${configPath} is`);
    const volume = pod.volumes.find((v: Doc) => v.name === mount.name);
    const configMap = byKind(docs, 'ConfigMap').find((c) => c.metadata.name === volume.configMap.name);
    const text = configMap!.data[configPath.slice(mount.mountPath.length + 1)];
    const file = join(out, 'router.json');
    writeFileSync(file, text);
    const config = loadConfig({ file, env: {} });
    assert.is(config.corpus, 'empty');
    const writable = container.volumeMounts.find((m: Doc) => config.dataDir?.startsWith(`${m.mountPath}/`) && !m.readOnly);
    assert.ok(writable, `the dataDir ${config.dataDir} is on a writable volume (the root filesystem is read-only)`);
    assert.is(config.dim, 32, 'the dim of the shard map the init Job creates');
    const initEnv = byKind(docs, 'Job')[0]!.spec.template.spec.containers[0].env as Doc[];
    assert.is(initEnv.find((e) => e.name === 'CANGEN_DIM')?.value, '32', 'the init Job creates the shard map with that dim');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

manifests('the top-level kustomization: the cluster folder, the init script\'s ConfigMap, the image', () => {
  const [top] = readYaml(join(k8s, 'kustomization.yaml'));
  assert.ok(top!.resources.includes('ads'));
  const generator = top!.configMapGenerator.find((g: Doc) => g.name === 'cangen-init-cluster');
  assert.equal(generator.files, ['init-cluster.cjs']);
  assert.ok(existsSync(join(k8s, 'init-cluster.cjs')));
  const job = byKind(manifestsOf(join(k8s, 'ads')), 'Job')[0]!;
  assert.is(job.spec.template.spec.volumes[0].configMap.name, 'cangen-init-cluster', 'the Job mounts the generated ConfigMap');
  assert.is(job.spec.template.spec.containers[0].command[1], '/opt/cangen-init/init-cluster.cjs');
  const values = readYaml(join(k8s, 'nats', 'values.yaml'))[0]!;
  assert.is(values.config.cluster.replicas, 3, 'JetStream: 3 servers');
  assert.is(values.config.jetstream.fileStore.enabled, true, 'JetStream: file storage');
});

const live = suite('deploy: the init script and the readiness probe on a real nats-server');
const skip = natsServerMissing();
const ctx = {} as { nats: NatsDeployment; dir: string };

live.before(async () => {
  if (skip) return;
  ctx.nats = await NatsDeployment.single();
  // As in the Job: the script alone in a folder (inside this checkout, 'cangen' would resolve to the
  // package itself), `cangen` on NODE_PATH, here this checkout's lib/ through tsx.
  ctx.dir = mkdtempSync(join(tmpdir(), 'cangen-init-'));
  mkdirSync(join(ctx.dir, 'modules', 'cangen'), { recursive: true });
  writeFileSync(join(ctx.dir, 'modules', 'cangen', 'index.js'), `module.exports = require(${JSON.stringify(join(root, 'lib', 'index.ts'))});\n`);
  copyFileSync(join(k8s, 'init-cluster.cjs'), join(ctx.dir, 'init-cluster.cjs'));
});

live.after(async () => {
  if (skip) return;
  await ctx.nats?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function initScript(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ctx.dir, 'init-cluster.cjs')], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_PATH: [join(ctx.dir, 'modules'), join(root, 'node_modules')].join(':'), NATS_URL: ctx.nats.servers.join(','), ...env },
  });
}

live('init-cluster.cjs creates the cluster, is harmless run again, and refuses other settings', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const env = { CANGEN_CLUSTER: 'deploytest', CANGEN_SHARDS: '3', CANGEN_DIM: '16', CANGEN_METRIC: 'cosine', CANGEN_STREAM_REPLICAS: '1' };
  const first = initScript(env);
  assert.is(first.status, 0, first.stderr);
  assert.match(first.stdout, 'cluster deploytest: 3 shards, dim 16, metric cosine');
  const nc = await connect({ servers: ctx.nats.servers });
  try {
    const map = await readShardMap(nc, 'deploytest');
    assert.equal([map.shards, map.dim, map.metric], [3, 16, 'cosine']);
    const stream = await (await nc.jetstreamManager()).streams.info(clusterNames('deploytest').logStream);
    assert.is(stream.config.num_replicas, 1);
  } finally {
    await nc.close();
  }
  assert.is(initScript(env).status, 0, 'a second run is harmless');
  const other = initScript({ ...env, CANGEN_DIM: '32' });
  assert.is(other.status, 1);
  assert.match(other.stderr, 'ERR_SHARD_MAP');
  const missing = initScript({ ...env, CANGEN_CLUSTER: '' });
  assert.is(missing.status, 1);
  assert.match(missing.stderr, 'CANGEN_CLUSTER');
});

live('the replicas\' probes: the manifest\'s paths on the metrics port of a real cangen shard; ready while it serves', async () => {
  if (skip) return console.log(`skipped: ${skip}`);
  const set = byKind(manifestsOf(join(k8s, 'ads')), 'StatefulSet')[0]!;
  const container = set.spec.template.spec.containers[0];
  const metricsPort = container.ports.find((p: { name: string }) => p.name === 'metrics');
  const probes = ['readinessProbe', 'livenessProbe', 'startupProbe'].map((name) => container[name].httpGet as { path: string; port: string });
  for (const probe of probes) assert.is(probe.port, 'metrics');
  assert.equal(probes.map((p) => p.path), ['/readyz', '/healthz', '/healthz']);
  assert.ok(container.args.includes('--metrics-port') && container.args.includes(String(metricsPort.containerPort)));

  const port = await freePort();
  const child = await shardProcess(ctx.nats.servers, 'deploytest', 0, 'probe-a', ['--metrics-port', String(port)]);
  const status = (path: string) => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status, () => 0);
  try {
    assert.is(await status('/readyz'), 200, 'serving: ready');
    assert.is(await status('/healthz'), 200);
    assert.is(await status('/nope'), 404, 'only the named paths answer');
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  assert.is(await status('/readyz'), 0, 'stopped: nothing answers');
});

manifests.run();
live.run();
