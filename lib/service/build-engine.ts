/** Builds the service's engine from its configuration: index kind, embedder, corpus, state. */
import { AdIndex, type AdIndexOptions } from '../ad-index';
import { CandidateEngine } from '../orchestration/engine';
import { HashedNgramEmbedder } from '../orchestration/embedders/hashed';
import { OpenAIEmbedder } from '../orchestration/embedders/openai';
import { ConfigError } from '../orchestration/errors';
import { seededRandom } from '../orchestration/random';
import { Marketplace } from '../simulator/world';
import type { ServiceConfig } from './config';

export interface BuiltEngine {
  engine: CandidateEngine;
  world: Marketplace | undefined;
}

/** Builds the engine and, for the simulator corpus, loads its ads (trains an IVF index first). */
export async function buildEngine(config: ServiceConfig, onProgress?: (done: number, total: number) => void): Promise<BuiltEngine> {
  const embedder = config.embedder.kind === 'hashed'
    ? new HashedNgramEmbedder({ dim: config.embedder.dim })
    : new OpenAIEmbedder({
        baseUrl: config.embedder.baseUrl,
        model: config.embedder.model,
        dim: config.embedder.dim,
        apiKey: config.embedder.apiKeyEnv ? process.env[config.embedder.apiKeyEnv] : undefined,
      });
  // nprobe / efSearch are the index's default search effort: every search of the engine uses them.
  const index = new AdIndex({ dim: config.dim, threads: config.threads, nprobe: config.nprobe, efSearch: config.efSearch, ...indexKind(config.index) });
  if (!index.isTrained && config.corpus === 'empty') {
    index.close();
    throw new ConfigError(`Expected an index that needs no training for corpus 'empty' but received '${config.index}': use 'flat' or 'HNSW32', or start from the simulator corpus`);
  }
  const world = config.corpus === 'simulator' ? new Marketplace({ ads: config.ads, dim: config.dim, coldShare: 0.02, seed: 1 }) : undefined;
  const random = seededRandom(7);
  const engine = new CandidateEngine({
    dim: config.dim,
    createIndex: () => index,
    embedder,
    scenarios: config.scenarios,
    allocator: config.allocator,
    stateFile: config.stateFile,
    threads: config.threads,
    filterCacheSize: config.filterCacheSize,
    embedderCacheSize: config.embedderCacheSize,
    embedderCallsPerSecond: config.embedderCallsPerSecond > 0 ? config.embedderCallsPerSecond : undefined,
    userFeatures: world
      ? (userId) => {
          const n = Number(/^u(\d+)$/.exec(userId)?.[1] ?? NaN);
          return Number.isInteger(n) ? world.features(n % world.nUsers, 'home', random) : undefined;
        }
      : undefined,
  });
  if (world) {
    const d = world.dim;
    if (!index.isTrained) {
      const rows = Math.min(world.nAds, 50_000);
      await index.train(world.adBehavioural.slice(0, rows * d));
    }
    const batch = 50_000;
    for (let start = 0; start < world.nAds; start += batch) {
      const end = Math.min(world.nAds, start + batch);
      const ads = Array.from({ length: end - start }, (_, j) => world.adUpsert(start + j));
      await engine.upsertAds(ads);
      onProgress?.(end, world.nAds);
    }
  }
  await engine.restoreState();
  return { engine, world };
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
