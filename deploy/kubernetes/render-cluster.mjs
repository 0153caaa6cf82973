#!/usr/bin/env node
/**
 * Writes one cangen cluster's manifests into deploy/kubernetes/<cluster>/: per shard a StatefulSet
 * of R replicas and a PodDisruptionBudget, the replicas' headless Service, the routers' Deployment,
 * Service and PodDisruptionBudget, the cluster-init Job (it carries S and the dimension), and the
 * folder's kustomization.yaml. Plain Node, no packages: kustomize cannot repeat a resource S times
 * by itself, and one template in code keeps every shard identical but for its number.
 *
 *   node deploy/kubernetes/render-cluster.mjs --shards 6 --replicas 3 --dim 64
 *
 * A new cluster name (resharding: S cannot change under a running cluster) renders a second
 * folder beside the first, to be listed in deploy/kubernetes/kustomization.yaml. The committed
 * ads/ folder is this script's output with its defaults; test/deploy-manifests.test.ts checks that
 * it still is.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const renderDefaults = {
  cluster: 'ads',
  shards: 3,
  replicas: 2,
  dim: 64,
  metric: 'ip',
  nats: 'nats://nats:4222',
  routers: 2,
  deadlineMs: 200,
  hedgeAfterMs: 20,
  // --pipeline: the routers run the candidate pipeline (cangen router --config), each shard search
  // bounded by pipelineDeadlineMs, under the scenarios' deadlines.
  pipeline: false,
  pipelineDeadlineMs: 25,
  metricsPort: 9464,
  snapshotEveryS: 300,
  // Sized per shard from docs/SIZING.md (memory per ad for the index kind and dimension, times the
  // ads of one shard, plus Node's baseline and the headroom a snapshot needs). 4Gi is a placeholder
  // for a small shard: set it from that page before production. Requests equal limits for memory
  // so that a replica is never the one the kernel kills first under node memory pressure.
  memory: '4Gi',
  cpu: '2',
};

const usage = `Usage: node deploy/kubernetes/render-cluster.mjs [options]

  --shards S          shards (${renderDefaults.shards})
  --replicas R        replicas per shard, 2 or more (${renderDefaults.replicas})
  --cluster NAME      the cluster name (${renderDefaults.cluster}); a new name is a new cluster (resharding)
  --routers N         router pods (${renderDefaults.routers})
  --deadline-ms MS    the routers' search deadline (${renderDefaults.deadlineMs})
  --hedge-after-ms MS the routers' hedging delay, 0 for none (${renderDefaults.hedgeAfterMs})
  --pipeline          routers serve the candidate pipeline (/v1/retrieve, writes with names) with the
                      service settings of the ConfigMap <cluster>-router-config; --deadline-ms is
                      then each shard search's budget (${renderDefaults.pipelineDeadlineMs})
  --dim N             embedding dimension, for the init Job (${renderDefaults.dim})
  --metric ip|l2|cosine  for the init Job (${renderDefaults.metric})
  --nats URLS         NATS servers (${renderDefaults.nats})
  --memory Q          memory request and limit per replica, from docs/SIZING.md (${renderDefaults.memory})
  --cpu Q             CPU request per replica (${renderDefaults.cpu})
  --out DIR           where to write (deploy/kubernetes/<cluster>)`;

const clusterName = /^[A-Za-z0-9_-]+$/;

/** Checks the options and fills in the defaults; throws with the option's name on a bad value. */
export function renderOptions(given = {}) {
  const o = { ...renderDefaults, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  o.pipeline = o.pipeline === true || o.pipeline === 'true';
  if (o.pipeline && given.deadlineMs === undefined) o.deadlineMs = o.pipelineDeadlineMs;
  for (const name of ['shards', 'replicas', 'routers', 'deadlineMs', 'hedgeAfterMs', 'dim', 'metricsPort', 'snapshotEveryS']) {
    o[name] = Number(o[name]);
    if (!Number.isInteger(o[name]) || o[name] < 0) throw new Error(`Expected a whole number for ${name} but received '${given[name]}'`);
  }
  if (o.shards < 1) throw new Error(`Expected 1 or more shards but received ${o.shards}`);
  if (o.replicas < 2) throw new Error(`Expected 2 or more replicas per shard (one replica cannot restart without its shard going missing) but received ${o.replicas}`);
  if (o.routers < 1) throw new Error(`Expected 1 or more routers but received ${o.routers}`);
  if (o.dim < 1) throw new Error(`Expected a dimension of 1 or more but received ${o.dim}`);
  if (!clusterName.test(o.cluster)) throw new Error(`Expected letters, digits, '_' or '-' for the cluster name but received '${o.cluster}'`);
  if (!['ip', 'l2', 'cosine'].includes(o.metric)) throw new Error(`Expected ip, l2 or cosine for metric but received '${o.metric}'`);
  return o;
}

/** Kubernetes object names are lowercase DNS labels: the cluster name's '_' becomes '-'. */
export const objectPrefix = (cluster) => `cangen-${cluster.toLowerCase().replace(/_/g, '-')}`;

/** A YAML block whose lines after the first are indented by `n` (the template places the first). */
const at = (n, block) => block.replace(/\n/g, `\n${' '.repeat(n)}`);

const header = '# Generated by deploy/kubernetes/render-cluster.mjs: edit the script (or its options), not this file.\n';

/** The labels that select a component's pods: of one cluster, and of one shard for replicas. */
function selector(o, component, shard) {
  return [`app.kubernetes.io/name: cangen-${component}`, `cangen/cluster: ${o.cluster}`, ...(shard === undefined ? [] : [`cangen/shard: "${shard}"`])].join('\n');
}

/** Every label of a component's objects and pods. */
const labels = (o, component, shard) => selector(o, component, shard).replace('\n', '\napp.kubernetes.io/part-of: cangen\n');

const metadata = (name, labelBlock) => `metadata:\n  name: ${name}\n  labels:\n    ${at(4, labelBlock)}`;

// The pods run as the image's uid 1000 with a read-only root filesystem and no capabilities.
const podSecurity = 'securityContext:\n  runAsNonRoot: true\n  runAsUser: 1000\n  runAsGroup: 1000';
const containerSecurity = 'securityContext:\n  allowPrivilegeEscalation: false\n  readOnlyRootFilesystem: true\n  capabilities:\n    drop: ["ALL"]';
/** The start of a pod's one container running the cangen command line; its args follow. */
const cangenContainer = (name) => `containers:\n  - name: ${name}\n    image: cangen\n    command: ["cangen"]\n    args:`;
const prometheus = (port) => `prometheus.io/scrape: "true"\nprometheus.io/port: "${port}"\nprometheus.io/path: /metrics`;

function disruptionBudget(name, labelBlock, selectorBlock, why) {
  return `apiVersion: policy/v1
kind: PodDisruptionBudget
${metadata(name, labelBlock)}
spec:
  ${at(2, why)}
  maxUnavailable: 1
  selector:
    matchLabels:
      ${at(6, selectorBlock)}
`;
}

function shardManifest(o, shard) {
  const name = `${objectPrefix(o.cluster)}-shard-${shard}`;
  const own = selector(o, 'shard', shard);
  const shardOnly = own.split('\n').filter((l) => l.startsWith('cangen/')).join('\n');
  return `${header}apiVersion: apps/v1
kind: StatefulSet
${metadata(name, labels(o, 'shard', shard))}
spec:
  serviceName: ${objectPrefix(o.cluster)}-shards
  replicas: ${o.replicas}
  # Replicas of a shard do not depend on each other: start them together, not one by one.
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  selector:
    matchLabels:
      ${at(6, own)}
  template:
    metadata:
      labels:
        ${at(8, labels(o, 'shard', shard))}
      annotations:
        ${at(8, prometheus(o.metricsPort))}
    spec:
      # On SIGTERM a replica deregisters first (routers stop choosing it within a watch update),
      # then stops reading the log, finishes a snapshot it is taking, answers the searches in
      # flight (each bounded by its router's deadline) and drains its NATS connection. Without a
      # snapshot under way that takes seconds; raise this when a shard's snapshot takes longer
      # to write and upload (docs/SIZING.md). One cut short is not stored (uploads are atomic).
      terminationGracePeriodSeconds: 60
      affinity:
        podAntiAffinity:
          # Two replicas of one shard on one node would both go with that node.
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  ${at(18, shardOnly)}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              ${at(14, shardOnly)}
      ${at(6, podSecurity)}
      ${at(6, cangenContainer('replica'))}
            - shard
            - --cluster
            - ${o.cluster}
            - --shard
            - "${shard}"
            - --replica-id
            - $(POD_NAME)
            - --nats
            - ${o.nats}
            - --metrics-port
            - "${o.metricsPort}"
            - --snapshot-every-s
            - "${o.snapshotEveryS}"
            # The log is purged behind the oldest snapshot kept, so JetStream's storage follows the
            # write rate, not the corpus's history (docs/CLUSTER.md, "Bounding the log").
            - --trim-log
          env:
            # The pod's name is stable across restarts (StatefulSet): a restarted replica keeps its id.
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          ports:
            - name: metrics
              containerPort: ${o.metricsPort}
          resources:
            # Memory: see docs/SIZING.md (bytes per ad by kind and dimension, ads per shard).
            # No CPU limit: throttling a replica in the middle of a search shows up as p99.
            requests:
              cpu: "${o.cpu}"
              memory: ${o.memory}
            limits:
              memory: ${o.memory}
          readinessProbe:
            # Ready while the replica serves (caught up with its shard's log), so that a rolling
            # restart waits for a restarted replica to catch up before it takes the next one down.
            httpGet:
              path: /readyz
              port: metrics
            periodSeconds: 5
            timeoutSeconds: 3
          startupProbe:
            # The metrics port opens once the replica has joined, after it loaded its shard's
            # newest snapshot: minutes for a large shard (docs/SIZING.md). Up to 30 minutes here;
            # the liveness probe starts after.
            httpGet:
              path: /healthz
              port: metrics
            periodSeconds: 10
            failureThreshold: 180
          livenessProbe:
            # Answers while the event loop runs, also during a long catch-up.
            httpGet:
              path: /healthz
              port: metrics
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          ${at(10, containerSecurity)}
          volumeMounts:
            # The OS temporary directory, the root filesystem being read-only: a snapshot is
            # written here before its upload and downloaded here before its load, so the node
            # needs room for one index file of the shard (docs/SIZING.md).
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
---
${disruptionBudget(name, labels(o, 'shard', shard), own, '# A replica that is restarting is not ready until it has caught up: a drain waits for it\n# before it takes the shard\'s next replica.')}`;
}

function serviceManifest(o) {
  return `${header}# Headless: gives the replicas stable DNS names and Prometheus a service to discover them by.
# Searches do not go through it: routers reach replicas over NATS request-reply.
apiVersion: v1
kind: Service
${metadata(`${objectPrefix(o.cluster)}-shards`, labels(o, 'shard'))}
spec:
  clusterIP: None
  selector:
    ${at(4, selector(o, 'shard'))}
  ports:
    - name: metrics
      port: ${o.metricsPort}
      targetPort: metrics
`;
}

function initJobManifest(o) {
  return `${header}# Creates the cluster's streams and buckets (initCluster) with JetStream replication 3. Idempotent:
# harmless when they exist with these settings, refused (ERR_SHARD_MAP) when they differ.
# Replicas started before it has run exit with ERR_NO_SHARD_MAP and are restarted by Kubernetes.
apiVersion: batch/v1
kind: Job
${metadata(`${objectPrefix(o.cluster)}-init`, labels(o, 'init'))}
spec:
  backoffLimit: 10
  # The script waits for NATS to come up; a Job still waiting after 15 minutes fails visibly.
  activeDeadlineSeconds: 900
  # A Job's pod template cannot change: letting it go after a day lets a later apply create it anew.
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        ${at(8, labels(o, 'init'))}
    spec:
      restartPolicy: OnFailure
      ${at(6, podSecurity)}
      containers:
        - name: init
          image: cangen
          command: ["node", "/opt/cangen-init/init-cluster.cjs"]
          env:
            - name: NODE_PATH
              value: /app/node_modules
            - name: NATS_URL
              value: ${o.nats}
            - name: CANGEN_CLUSTER
              value: ${o.cluster}
            - name: CANGEN_SHARDS
              value: "${o.shards}"
            - name: CANGEN_DIM
              value: "${o.dim}"
            - name: CANGEN_METRIC
              value: ${o.metric}
            - name: CANGEN_STREAM_REPLICAS
              value: "3"
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              memory: 256Mi
          ${at(10, containerSecurity)}
          volumeMounts:
            - name: script
              mountPath: /opt/cangen-init
      volumes:
        - name: script
          configMap:
            name: cangen-init-cluster
`;
}

function routerManifest(o) {
  const name = `${objectPrefix(o.cluster)}-router`;
  const own = selector(o, 'router');
  return `${header}# The routers: stateless, behind one Service. Each reads the shard map and the members bucket from
# JetStream, sends every search to one serving replica per shard and merges the top-k, answering by
# the deadline (a partial answer names the missing shards). Scale them with the request rate.
${o.pipeline ? pipelineRouterConfig(o, name) : ''}apiVersion: apps/v1
kind: Deployment
${metadata(name, labels(o, 'router'))}
spec:
  replicas: ${o.routers}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      ${at(6, own)}
  template:
    metadata:
      labels:
        ${at(8, labels(o, 'router'))}
      annotations:
        ${at(8, prometheus(8080))}
    spec:
      # On SIGTERM a router answers /readyz 503 for its drain delay (5 s: the Service stops
      # sending it requests meanwhile), then closes its listener and finishes the requests in
      # flight, each bounded by its ${o.deadlineMs} ms deadline.
      terminationGracePeriodSeconds: 30
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    ${at(20, own)}
      ${at(6, podSecurity)}
      ${at(6, cangenContainer('router'))}
            - router
            - --cluster
            - ${o.cluster}
            - --nats
            - ${o.nats}
            # Its default is loopback only: in a pod, probes and the Service come from outside.
            - --host
            - 0.0.0.0
            - --port
            - "8080"
            - --deadline-ms
            - "${o.deadlineMs}"
            # A second replica is asked when the first has not answered in ${o.hedgeAfterMs} ms: the tail
            # latency of one slow replica is cut at the cost of the extra searches
            # (cangen_router_hedges_sent_total against cangen_router_searches_total).
            - --hedge-after-ms
            - "${o.hedgeAfterMs}"${o.pipeline ? `
            # The candidate pipeline (docs/CLUSTER.md, "The pipeline in the router"), named by its pod
            # in the catalog applier's lease.
            - --config
            - /etc/cangen/router.json
            - --router-id
            - $(POD_NAME)` : ''}
          env:
            # Writes through the router (PUT/DELETE /v1/ads) need this bearer token; without the
            # Secret they are refused and searches still work. deploy/kubernetes/README.md.
            - name: CANGEN_TOKEN
              valueFrom:
                secretKeyRef:
                  name: cangen-router
                  key: token
                  optional: true${o.pipeline ? `
            # Signs request ids for /v1/feedback: the same on every router, or feedback is refused.
            - name: CANGEN_FEEDBACK_SECRET
              valueFrom:
                secretKeyRef:
                  name: cangen-router
                  key: feedbackSecret
                  optional: true
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name` : ''}
          ports:
            - name: http
              containerPort: 8080
          # /readyz: the shard map is known, NATS reachable and some shard serves (partial answers
          # name the missing shards; a shard's outage does not empty the Service).
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 2
          # /healthz: the process answers.
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          resources:${o.pipeline ? `
            # A pipeline router holds every ad's attributes and titles and the content vectors of
            # cold-start ads (not the embeddings): size it with the corpus. 4Gi is a placeholder.
            requests:
              cpu: "2"
              memory: 4Gi
            limits:
              memory: 4Gi` : `
            # A router holds no ads: its memory is the requests in flight and the merge buffers
            # (k x shards per query). CPU scales with requests/s; no CPU limit (throttling is p99).
            requests:
              cpu: "1"
              memory: 512Mi
            limits:
              memory: 1Gi`}
          ${at(10, containerSecurity)}
          volumeMounts:
            - name: tmp
              mountPath: /tmp${o.pipeline ? `
            - name: config
              mountPath: /etc/cangen
              readOnly: true
            # The router's corpus (the config's dataDir): a new pod starts from the newest catalog
            # snapshot into it, a restarted container from what it holds.
            - name: data
              mountPath: /var/lib/cangen` : ''}
      volumes:
        - name: tmp
          emptyDir: {}${o.pipeline ? `
        - name: config
          configMap:
            name: ${name}-config
        - name: data
          emptyDir: {}` : ''}
---
apiVersion: v1
kind: Service
${metadata(name, labels(o, 'router'))}
spec:
  selector:
    ${at(4, own)}
  ports:
    - name: http
      port: 8080
      targetPort: http
---
${disruptionBudget(name, labels(o, 'router'), own, '# Routers are interchangeable: one away at a time keeps the others serving.')}`;
}

/**
 * The pipeline routers' service settings (docs/SERVICE.md): the corpus comes from the cluster's
 * catalog ('empty'), the dim from its shard map. Add scenarios, allocator, embedder here.
 */
function pipelineRouterConfig(o, name) {
  return `apiVersion: v1
kind: ConfigMap
${metadata(`${name}-config`, labels(o, 'router'))}
data:
  router.json: |
    ${JSON.stringify({ dim: o.dim, corpus: 'empty', allocator: 'learned', dataDir: '/var/lib/cangen/router' })}
---
`;
}

/** The files of one cluster's folder, name -> text. */
export function renderCluster(given = {}) {
  const o = renderOptions(given);
  const files = new Map();
  const shardFiles = [];
  for (let shard = 0; shard < o.shards; shard++) {
    const file = `shard-${shard}.yaml`;
    shardFiles.push(file);
    files.set(file, shardManifest(o, shard));
  }
  files.set('service.yaml', serviceManifest(o));
  files.set('router.yaml', routerManifest(o));
  files.set('init-job.yaml', initJobManifest(o));
  files.set('kustomization.yaml', `${header}apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - service.yaml
  - init-job.yaml
  - router.yaml
${shardFiles.map((f) => `  - ${f}`).join('\n')}
`);
  return files;
}

/** Writes the folder, removing shard files of a previous rendering with more shards. */
export function writeCluster(out, given = {}) {
  const files = renderCluster(given);
  mkdirSync(out, { recursive: true });
  for (const old of readdirSync(out)) if (/^shard-\d+\.yaml$/.test(old) && !files.has(old)) rmSync(join(out, old));
  for (const [name, text] of files) writeFileSync(join(out, name), text);
  return [...files.keys()];
}

function main() {
  const { values } = parseArgs({
    options: {
      shards: { type: 'string' }, replicas: { type: 'string' }, routers: { type: 'string' }, 'deadline-ms': { type: 'string' },
      'hedge-after-ms': { type: 'string' }, cluster: { type: 'string' }, dim: { type: 'string' },
      metric: { type: 'string' }, nats: { type: 'string' }, memory: { type: 'string' }, cpu: { type: 'string' },
      out: { type: 'string' }, pipeline: { type: 'boolean' }, help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const { out, help: _, 'deadline-ms': deadlineMs, 'hedge-after-ms': hedgeAfterMs, ...rest } = values;
  const options = renderOptions({ ...rest, deadlineMs, hedgeAfterMs });
  const folder = out ?? join(dirname(fileURLToPath(import.meta.url)), objectPrefix(options.cluster).slice('cangen-'.length));
  const written = writeCluster(folder, options);
  console.log(`wrote ${written.length} files to ${folder}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main();
  } catch (error) {
    console.error(error.message);
    process.exit(2);
  }
}
