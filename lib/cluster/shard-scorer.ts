/**
 * The learned scorer of a pipeline router whose shards hold one (cangen shard --scorer): the
 * scorer generator's user is ranked by the model in every shard, under the request's eligibility,
 * and the router merges the shards' top-k. The request's scenario picks the model's blend of heads
 * when the model defines that scenario (its default blend otherwise), as LearnedScorerAdapter does
 * in one process.
 */
import type { AdStore } from '../corpus/ad-store';
import type { RequestEligibility } from '../corpus/eligibility';
import { markEligible, markPartial } from '../orchestration/merge';
import type { Scorer } from '../orchestration/generators/scorer';
import type { GeneratedCandidate } from '../orchestration/types';
import type { LogPosition } from './log-position';
import type { ClusterRouter } from './router';

export class ShardScorer implements Scorer {
  readonly name = 'learned:shards';

  /** `readFloor`: the position every search reads at least (the RemoteIndex's, so both honour readAfter alike). */
  constructor(
    private readonly router: ClusterRouter,
    private readonly store: AdStore,
    private readonly readFloor: () => LogPosition,
    private readonly deadlineMs?: number,
  ) {}

  async topK(user: Float32Array, k: number, scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    if (signal?.aborted) return [];
    const excluded = eligibility?.excludeAds;
    const floor = this.readFloor();
    const answer = await this.router.search(user, k + (excluded?.size ?? 0), {
      scorer: scenario !== undefined && this.scenarios().includes(scenario) ? { scenario } : {},
      ...(eligibility ? { filter: this.store.nativeFilter(eligibility.geo, eligibility) } : {}),
      ...(Object.keys(floor).length > 0 ? { readAfter: floor } : {}),
      ...(this.deadlineMs !== undefined ? { deadlineMs: this.deadlineMs } : {}),
    });
    const { ids, scores } = answer.results.row(0);
    const out: GeneratedCandidate[] = [];
    for (let i = 0; i < ids.length && out.length < k; i++) if (!excluded?.has(ids[i]!)) out.push({ adId: ids[i]!, score: scores[i]! });
    markPartial(out, answer.missingShards);
    return eligibility ? markEligible(out) : out;
  }

  /** The scenarios the shards' model defines (as their replicas advertise it). */
  private scenarios(): readonly string[] {
    const map = this.router.shardMap;
    for (let shard = 0; map && shard < map.shards; shard++) {
      const scorer = this.router.replicas(shard).find((m) => m.scorer)?.scorer;
      if (scorer) return scorer.scenarios;
    }
    return [];
  }
}
