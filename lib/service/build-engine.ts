/** Builds the service's engine from its configuration: index kind, embedder, corpus (on disk or in memory), state. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdIndexOptions } from '../ad-index';
import type { UserHistoryStore } from '../history';
import { CandidateEngine, type EngineOptions } from '../orchestration/engine';
import { HashedNgramEmbedder } from '../orchestration/embedders/hashed';
import { OpenAIEmbedder } from '../orchestration/embedders/openai';
import { ConfigError } from '../orchestration/errors';
import type { UserFeatures } from '../orchestration/types';
import { LearnedScorer } from '../scorer';
import { ScenarioHeads, SequenceEncoder } from '../sequence';
import type { ServiceConfig } from './config';
import { openServiceHistories } from './history';

export interface BuiltEngine {
  engine: CandidateEngine;
  /** The user-history store the sequence generator reads (open when config.sequenceModel is set): hand it to createService. */
  histories?: UserHistoryStore;
}

/**
 * Where a corpus that starts empty gets its first ads, and the features of the users it knows
 * (the simulator's marketplace is one: lib/simulator/service-corpus.ts).
 */
export interface CorpusSource {
  userFeatures?: (userId: string) => UserFeatures | undefined;
  /** Trains the index when it needs it and writes the ads, through engine.upsertAds. */
  fill(engine: CandidateEngine, onProgress?: (done: number, total: number) => void): Promise<void>;
}

export interface BuildOptions {
  /** Fills the corpus when it is empty (a dataDir already holding ads is not refilled). */
  source?: CorpusSource;
  onProgress?: (done: number, total: number) => void;
  /** Hears what opening the corpus did (snapshot, replay). */
  log?: (line: string) => void;
  /**
   * Opens the engine from the options the config gives (default CandidateEngine.open): a cluster
   * router passes its own (ClusterEngine.open, lib/cli/router.ts), which takes the corpus from the cluster.
   */
  open?: (options: EngineOptions) => Promise<CandidateEngine>;
}

/** Builds the engine: opens the corpus (config.dataDir: its snapshot and catalog), fills it from `source` when empty. */
export async function buildEngine(config: ServiceConfig, options: BuildOptions = {}): Promise<BuiltEngine> {
  if (config.corpus === 'simulator' && !options.source) {
    throw new ConfigError("Expected a corpus source for corpus 'simulator' (simulatorSource(config) from the simulator module, as `cangen serve` passes) or corpus 'empty'");
  }
  const embedder = config.embedder.kind === 'hashed'
    ? new HashedNgramEmbedder({ dim: config.embedder.dim })
    : new OpenAIEmbedder({
        baseUrl: config.embedder.baseUrl,
        model: config.embedder.model,
        dim: config.embedder.dim,
        apiKey: config.embedder.apiKeyEnv ? process.env[config.embedder.apiKeyEnv] : undefined,
      });
  const sequence = config.sequenceModel ? await openSequence(config, options.log) : undefined;
  let engine: CandidateEngine;
  try {
    engine = await (options.open ?? ((o: EngineOptions) => CandidateEngine.open(o)))({
    dim: config.dim,
    // nprobe / efSearch are the index's default search effort: every search of the engine uses them.
    index: { nprobe: config.nprobe, efSearch: config.efSearch, ...indexKind(config.index), ...(config.index === 'flat' ? { precision: config.precision } : {}) },
    contentPrecision: config.precision,
    dataDir: config.dataDir,
    durability: config.durability,
    log: options.log,
    embedder,
    scenarios: config.scenarios,
    allocator: config.allocator,
    stateFile: config.stateFile,
    threads: config.threads,
    filterCacheSize: config.filterCacheSize,
    embedderCacheSize: config.embedderCacheSize,
    embedderCallsPerSecond: config.embedderCallsPerSecond > 0 ? config.embedderCallsPerSecond : undefined,
    batching: {
      enabled: config.batching,
      maxBatchSize: config.batchMaxSize,
      maxDelayMs: config.batchMaxDelayMs,
      ...(config.batchMaxInFlight > 0 ? { maxInFlight: config.batchMaxInFlight } : {}),
    },
    userFeatures: options.source?.userFeatures,
    sequence,
  });
  } catch (error) {
    await closeSequence(sequence);
    throw error;
  }
  try {
    if (engine.corpus.hasLocalEmbeddings && !engine.corpus.behavioural.isTrained && engine.store.size === 0 && !options.source) {
      throw new ConfigError(`Expected an index that needs no training for corpus 'empty' but received '${config.index}': use 'flat' or 'HNSW32', or start from the simulator corpus`);
    }
    if (options.source && engine.store.size === 0) await options.source.fill(engine, options.onProgress);
    await engine.restoreState();
  } catch (error) {
    await engine.close();
    await closeSequence(sequence);
    throw error;
  }
  return { engine, histories: sequence?.histories };
}

/**
 * The trained user model of config.sequenceModel, its Mixture-of-Logits head or its multi-task
 * heads (blended by the request's scenario) if it has them, and the history store.
 */
async function openSequence(config: ServiceConfig, log?: (line: string) => void) {
  const dir = config.sequenceModel!;
  const encoder = await SequenceEncoder.load(dir, { threads: config.threads });
  let scorer: LearnedScorer | undefined;
  let heads: ScenarioHeads | undefined;
  try {
    if (encoder.dim !== config.dim) {
      throw new ConfigError(`Expected a sequence model of the service's dim ${config.dim} for sequenceModel but ${dir} has dim ${encoder.dim}`);
    }
    // The export's scorer/ directory: kind 'dot' needs nothing beyond the index; 'mol' is a LearnedScorer.
    const scorerConfig = join(dir, 'scorer', 'config.json');
    if (existsSync(scorerConfig) && (JSON.parse(readFileSync(scorerConfig, 'utf8')) as { kind?: string }).kind === 'mol') {
      scorer = await LearnedScorer.load(join(dir, 'scorer'), { threads: config.threads, precision: config.scorerPrecision });
      log?.(`sequence model: Mixture-of-Logits scorer, ${scorer.precision} scan`);
    }
    if (encoder.config.headNames.length > 0) heads = await ScenarioHeads.load(dir);
    const histories = await openServiceHistories(config, log ? (line) => log(line) : undefined);
    const sessions = config.sequenceSessionBytes > 0 ? encoder.sessions({ maxBytes: config.sequenceSessionBytes }) : (false as const);
    return { encoder, scorer, heads, histories, sessions };
  } catch (error) {
    encoder.close();
    scorer?.close();
    heads?.close();
    throw error;
  }
}

async function closeSequence(sequence: Awaited<ReturnType<typeof openSequence>> | undefined): Promise<void> {
  if (!sequence) return;
  await sequence.histories.close();
  if (sequence.sessions) sequence.sessions.close();
  sequence.encoder.close();
  sequence.scorer?.close();
  sequence.heads?.close();
}

/**
 * The AdIndex for the `index` setting: 'flat' (exact), 'IVF<n>,Flat' (cangen's IVF-Flat kind, whose
 * filtered search widens the configured nprobe by the eligible fraction), any other FAISS factory string as kind
 * 'faiss'.
 */
export function indexKind(setting: string): Pick<AdIndexOptions, 'kind' | 'nlist' | 'factory'> {
  if (setting === 'flat') return { kind: 'flat' };
  const ivf = /^IVF(\d+),Flat$/.exec(setting);
  if (ivf) return { kind: 'ivf-flat', nlist: Number(ivf[1]) };
  return { kind: 'faiss', factory: setting };
}
