/**
 * Merging generators' ranked lists into one answer. Generators claim in turns, each taking its
 * next eligible ad not already claimed, until its quota is filled; so an ad two generators propose
 * goes to the one that ranks it higher. Slots a generator could not fill (too few eligible ads,
 * a timeout) are then backfilled by the others' surplus in the same turn order.
 */
import type { Candidate, GeneratedCandidate } from './types';

export interface MergeInput {
  name: string;
  quota: number;
  list: readonly GeneratedCandidate[];
  /** Every candidate is known to be eligible (filtered inside the search): skip the check. */
  eligible?: boolean;
}

const eligibleLists = new WeakSet<readonly GeneratedCandidate[]>();

/**
 * Marks a generator's answer as already eligible: it came from a search with the request's native
 * filter, checked against the current state. The pipeline then skips its own check for it.
 */
export function markEligible<T extends readonly GeneratedCandidate[]>(list: T): T {
  eligibleLists.add(list);
  return list;
}

export function isMarkedEligible(list: readonly GeneratedCandidate[]): boolean {
  return eligibleLists.has(list);
}

const partialLists = new WeakMap<readonly GeneratedCandidate[], readonly number[]>();

/**
 * Marks a generator's answer as partial: its search went to a sharded corpus whose shards
 * `missingShards` did not answer by the deadline. The pipeline reports it with the generator.
 */
export function markPartial<T extends readonly GeneratedCandidate[]>(list: T, missingShards: readonly number[]): T {
  if (missingShards.length > 0) partialLists.set(list, missingShards);
  return list;
}

/** The shards a generator's answer misses (markPartial), or undefined when it is whole. */
export function missingShardsOf(list: readonly GeneratedCandidate[]): readonly number[] | undefined {
  return partialLists.get(list);
}

export interface MergeOutput {
  candidates: Candidate[];
  /** Per input: candidates that made the answer. */
  kept: number[];
}

export function mergeCandidates(inputs: readonly MergeInput[], k: number, eligible: (adId: bigint) => boolean): MergeOutput {
  const claimed = new Map<bigint, Candidate>();
  const candidates: Candidate[] = [];
  const kept = inputs.map(() => 0);
  const cursor = inputs.map(() => 0);
  const verdict = new Map<bigint, boolean>();
  const isEligible = (adId: bigint) => {
    let ok = verdict.get(adId);
    if (ok === undefined) {
      ok = eligible(adId);
      verdict.set(adId, ok);
    }
    return ok;
  };

  /** Advances input g to its next eligible, unclaimed ad and claims it; false when it has none. */
  const claimNext = (g: number): boolean => {
    const { list, name } = inputs[g]!;
    const trusted = inputs[g]!.eligible === true;
    while (cursor[g]! < list.length) {
      const c = list[cursor[g]!++]!;
      const other = claimed.get(c.adId);
      if (other) {
        if (!other.sources.includes(name)) other.sources.push(name);
        continue;
      }
      if (!trusted && !isEligible(c.adId)) continue;
      const candidate: Candidate = { adId: c.adId, source: name, score: c.score, rank: kept[g]!, sources: [name] };
      claimed.set(c.adId, candidate);
      candidates.push(candidate);
      kept[g]!++;
      return true;
    }
    return false;
  };

  const turns = (withinQuota: boolean) => {
    let progress = true;
    while (progress && candidates.length < k) {
      progress = false;
      for (let g = 0; g < inputs.length && candidates.length < k; g++) {
        if (withinQuota && kept[g]! >= inputs[g]!.quota) continue;
        if (claimNext(g)) progress = true;
      }
    }
  };
  turns(true);
  turns(false);
  return { candidates, kept };
}
