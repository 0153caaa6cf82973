/** The simulator's marketplace as the service's corpus: its ads (written once into an empty corpus) and its users. */
import type { CandidateEngine } from '../orchestration/engine';
import { seededRandom } from '../orchestration/random';
import type { CorpusSource } from '../service/build-engine';
import type { ServiceConfig } from '../service/config';
import { Marketplace } from './world';

export function simulatorSource(config: Pick<ServiceConfig, 'ads' | 'dim'>): CorpusSource {
  const world = new Marketplace({ ads: config.ads, dim: config.dim, coldShare: 0.02, seed: 1 });
  const random = seededRandom(7);
  return {
    userFeatures: (userId) => {
      const n = Number(/^u(\d+)$/.exec(userId)?.[1] ?? NaN);
      return Number.isInteger(n) ? world.features(n % world.nUsers, 'home', random) : undefined;
    },
    fill: async (engine: CandidateEngine, onProgress) => {
      const d = world.dim;
      const index = engine.corpus.behavioural;
      if (!index.isTrained) await index.train(world.adBehavioural.slice(0, Math.min(world.nAds, 50_000) * d));
      const batch = 50_000;
      for (let start = 0; start < world.nAds; start += batch) {
        const end = Math.min(world.nAds, start + batch);
        await engine.upsertAds(Array.from({ length: end - start }, (_, j) => world.adUpsert(start + j)));
        onProgress?.(end, world.nAds);
      }
    },
  };
}
