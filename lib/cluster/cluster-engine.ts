/**
 * The candidate pipeline over a sharded corpus: a CandidateEngine in a router, whose behavioural
 * generators search the cluster's shards (RemoteIndex) and whose writes go through the catalog
 * stream (CatalogLog). The router's own corpus keeps the ads' attributes, names, content index
 * and popularity; the shards keep the embeddings. One router at a time (the catalog applier)
 * turns catalog writes into shard-log updates. docs/CLUSTER.md, "The pipeline in the router".
 */
import type { NatsConnection } from 'nats';
import { AdCorpus } from '../corpus/ad-corpus';
import { CandidateEngine, type EngineOptions } from '../orchestration/engine';
import { InvalidArgumentError } from '../errors';
import { integerIn } from '../validate';
import { CatalogApplier, CatalogProgress } from './catalog-applier';
import { CatalogLog } from './catalog-log';
import { CorpusLog } from './corpus-log';
import { ClusterError } from './errors';
import { checkName, clusterNames } from './names';
import { restoreCatalogSnapshot, saveCatalogSnapshot } from './catalog-snapshots';
import { RemoteIndex } from './remote-index';
import { ShardScorer } from './shard-scorer';
import { ClusterRouter, type RouterOptions } from './router';
import { readShardMap, type ShardMap } from './shard-map';
import { SnapshotStore, type SnapshotManifest } from './snapshots';

/** What a cluster router's engine takes from EngineOptions: the rest comes from the cluster. */
export type ClusterEngineEngineOptions = Omit<EngineOptions, 'dim' | 'metric' | 'corpus' | 'index' | 'embeddings' | 'readAfter' | 'scorer' | 'scorerMode'>;

export interface ClusterEngineOptions extends ClusterEngineEngineOptions {
  cluster: string;
  /** Names this router (the catalog applier's lease); unique among the cluster's routers. */
  routerId: string;
  /** A shard search's budget in ms: shards later than this are reported missing (default 25; keep it under the scenarios' deadlines). */
  shardDeadlineMs?: number;
  /** Hedge a shard search to a second replica after this many ms (default 0: never). */
  hedgeAfterMs?: number;
  /** The catalog applier's lease (default 5000 ms). */
  applierLeaseMs?: number;
  /**
   * Rank the scorer generator's users with the shards' learned scorer (cangen shard --scorer), blended
   * by the request's scenario, instead of the dot product over the shards' index (default false).
   */
  shardScorer?: boolean;
  /** Called once if the router's corpus stops (a stored catalog write it cannot apply): restart the router. */
  onFatal?: (error: Error) => void;
  /**
   * With a dataDir: how often the router holding the applier lease uploads a snapshot of its
   * catalog when it changed (default 300 s; 0: never). A router starting with an empty dataDir
   * loads the newest and replays only the catalog after it.
   */
  catalogSnapshotEveryS?: number;
  // dataDir (inherited): where the router keeps its corpus (attributes, names, content index; not the
  // embeddings, which the shards hold). A restart then replays only the catalog after it; absent, the whole catalog.
}

export const clusterEngineDefaults = { shardDeadlineMs: 25, hedgeAfterMs: 0, applierLeaseMs: 5000, catalogSnapshotEveryS: 300 };

export class ClusterEngine {
  private constructor(
    /** The pipeline: retrieve, feedback, upsertAds (through the catalog) ... */
    readonly engine: CandidateEngine,
    readonly router: ClusterRouter,
    readonly catalog: CatalogLog,
    readonly applier: CatalogApplier,
    readonly remote: RemoteIndex,
    private readonly progress: CatalogProgress,
    private readonly map: ShardMap,
    private readonly routerId: string,
    private readonly snapshots: SnapshotStore | undefined,
  ) {}

  private snapshotTimer: NodeJS.Timeout | undefined;
  private snapshotting: Promise<unknown> | undefined;
  private snapshotOrigin = 0;

  /**
   * Uploads a snapshot of this router's catalog now (a router with a dataDir); resolves with its
   * manifest. The router holding the applier lease does it every catalogSnapshotEveryS by itself.
   */
  snapshotCatalog(): Promise<SnapshotManifest> {
    if (!this.snapshots) return Promise.reject(new ClusterError('ERR_CLUSTER', 'Expected a router with a dataDir to snapshot its catalog'));
    const run = saveCatalogSnapshot(this.snapshots, this.engine.corpus, this.map, this.routerId).then((manifest) => {
      this.snapshotOrigin = Math.max(this.snapshotOrigin, manifest.sequence);
      return manifest;
    });
    const tracked: Promise<unknown> = run.catch(() => undefined).finally(() => {
      if (this.snapshotting === tracked) this.snapshotting = undefined;
    });
    this.snapshotting = tracked;
    return run;
  }

  private snapshotEvery(everyMs: number, log: ((line: string) => void) | undefined): void {
    this.snapshotTimer = setInterval(() => {
      if (this.snapshotting || !this.applier.stats().holding || this.engine.corpus.orderedThrough <= this.snapshotOrigin) return;
      void this.snapshotCatalog()
        .then((m) => log?.(`catalog snapshot ${m.sequence} uploaded (${m.ads} ads, ${m.bytes} bytes)`))
        .catch((error: Error) => log?.(`catalog snapshot failed: ${error.message}`));
    }, everyMs);
    this.snapshotTimer.unref();
  }

  /**
   * Joins cluster `options.cluster` as a router with the pipeline: reads the shard map (refused
   * when there is none), replays the catalog into the router's corpus, competes for the catalog
   * applier's lease, and resolves with the engine ready to serve.
   */
  static async open(nc: NatsConnection, options: ClusterEngineOptions): Promise<ClusterEngine> {
    for (const refused of ['dim', 'metric', 'corpus', 'index', 'embeddings', 'readAfter', 'scorer', 'scorerMode']) {
      if ((options as unknown as Record<string, unknown>)[refused] !== undefined) {
        throw new InvalidArgumentError(`Expected no '${refused}' for a ClusterEngine: the cluster's shard map gives dim and metric, the catalog stream fills its corpus, and the shards hold the index (and a learned scorer: cangen shard --scorer)`);
      }
    }
    const { cluster, routerId, shardDeadlineMs, hedgeAfterMs, applierLeaseMs, shardScorer, onFatal, catalogSnapshotEveryS, dataDir, durability, ...engineOptions } = options;
    const snapshotEveryS = integerIn(catalogSnapshotEveryS ?? clusterEngineDefaults.catalogSnapshotEveryS, 'options.catalogSnapshotEveryS', 0, 86_400);
    checkName(cluster, 'options.cluster');
    checkName(routerId, 'options.routerId');
    const log = engineOptions.log;
    const map = await readShardMap(nc, cluster);
    const routerOptions: RouterOptions = {
      cluster,
      deadlineMs: integerIn(shardDeadlineMs ?? clusterEngineDefaults.shardDeadlineMs, 'options.shardDeadlineMs', 1, 600_000),
      hedgeAfterMs: integerIn(hedgeAfterMs ?? clusterEngineDefaults.hedgeAfterMs, 'options.hedgeAfterMs', 0, 600_000),
    };
    const closers: (() => Promise<void> | void)[] = [];
    const unwind = async () => {
      for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    };
    try {
      const router = await ClusterRouter.start(nc, routerOptions);
      closers.push(() => router.close());
      const snapshots = dataDir === undefined ? undefined : await SnapshotStore.open(nc, clusterNames(cluster), map.streamReplicas);
      if (snapshots) {
        const restored = await restoreCatalogSnapshot(snapshots, dataDir!, log ?? (() => undefined));
        if (restored) log?.(`catalog snapshot ${restored.sequence} of router ${restored.replicaId} loaded (${restored.ads} ads, ${restored.bytes} bytes)`);
      }
      const corpus = await AdCorpus.open({
        dim: map.dim,
        metric: map.metric,
        contentDim: engineOptions.embedder?.dim ?? 256,
        contentPrecision: engineOptions.contentPrecision,
        threads: engineOptions.threads,
        dataDir,
        durability,
        log,
        embeddingsIn: `the shards of cluster '${cluster}'`,
      });
      closers.push(() => corpus.close());
      const catalog = await CatalogLog.open(nc, cluster, corpus, { log, onFatal });
      closers.push(() => catalog.close());
      const config = await nc.jetstream().views.kv(clusterNames(cluster).configBucket, { bindOnly: true });
      const progress = await CatalogProgress.watch(config);
      closers.push(() => progress.stop());
      const applier = CatalogApplier.start(nc, config, catalog, corpus.store, await CorpusLog.open(nc, cluster), {
        holderId: routerId,
        leaseMs: integerIn(applierLeaseMs ?? clusterEngineDefaults.applierLeaseMs, 'options.applierLeaseMs', 100, 600_000),
        log,
      });
      closers.push(() => applier.stop());
      const remote = new RemoteIndex(router, () => corpus.size);
      let cluster_: ClusterEngine | undefined;
      const engine = await CandidateEngine.open({
        ...engineOptions,
        dim: map.dim,
        metric: map.metric,
        corpus,
        embeddings: remote,
        ...(shardScorer ? { scorer: new ShardScorer(router, corpus.store, () => remote.readFloor) } : {}),
        readAfter: (seq, timeoutMs) => cluster_!.readAfter(seq, timeoutMs),
      });
      cluster_ = new ClusterEngine(engine, router, catalog, applier, remote, progress, map, routerId, snapshots);
      if (snapshots && snapshotEveryS > 0) cluster_.snapshotEvery(snapshotEveryS * 1000, log);
      return cluster_;
    } catch (error) {
      await unwind();
      throw error;
    }
  }

  /** The last catalog sequence the applier (any router) recorded as in the shard logs. */
  get sentThrough(): number {
    return this.progress.current.catalogSeq;
  }

  /**
   * Waits until catalog write `seq` is in the shard logs (the applier recorded it), then makes
   * every later search read at least that position; ERR_CLUSTER after `timeoutMs`.
   */
  async readAfter(seq: number, timeoutMs: number): Promise<void> {
    const position = await this.progress.waitFor(seq, timeoutMs);
    if (!position) {
      throw new ClusterError('ERR_CLUSTER', `Catalog write ${seq} did not reach the shard logs within ${timeoutMs} ms (the applier has sent through ${this.progress.current.catalogSeq}; this router applied ${this.catalog.applied}): is a router holding the applier lease? retry later`);
    }
    this.remote.readAfter(position);
  }

  /** Stops applying (another router takes the lease), following the catalog and routing; frees the corpus. */
  async close(): Promise<void> {
    clearInterval(this.snapshotTimer);
    await this.snapshotting;
    await this.applier.stop();
    this.progress.stop();
    await this.catalog.close();
    await this.router.close();
    await this.engine.close();
    await this.engine.corpus.close();
  }
}
