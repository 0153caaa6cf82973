/** The shapes shared by generators, the pipeline, allocators and the service. */
import type { EligibilityFilter, RequestEligibility } from '../corpus/eligibility';

export { requestEligibility, type EligibilityFilter, type RequestEligibility } from '../corpus/eligibility';

/** What is known about the user making a request; every field is optional. */
export interface UserFeatures {
  /** Long-term interest: the user tower's embedding (two-tower generator). */
  embedding?: Float32Array;
  /** Short-term interest, e.g. from the recent action sequence (learned-scorer generator). */
  shortTerm?: Float32Array;
  /** Query text or interest keywords (content generator). */
  text?: string;
  /** Where the user is, for geo targeting. */
  geo?: string;
  /** Categories the user engaged with recently, most recent first (popularity generator). */
  categories?: string[];
  /** What the user just did, oldest first (sequence generator; without it, the user-history store's). */
  history?: UserHistory;
}

/** A user's recent events, oldest first: item ids, and optionally action names and times (seconds). */
export interface UserHistory {
  items: readonly (string | bigint)[];
  actions?: readonly string[];
  times?: readonly number[];
}

export interface RetrieveRequest {
  userId: string;
  scenario: string;
  /** Total candidates wanted; defaults to the scenario's k. */
  k?: number;
  /** Time budget in ms; defaults to the scenario's. The answer comes within it. */
  deadlineMs?: number;
  features?: UserFeatures;
  eligibility?: EligibilityFilter;
  /**
   * Read-your-writes: the sequence a write resolved with (upsertAds' `seq`). The search waits
   * until that write is searchable: at once on a local corpus; on a cluster router, until the
   * shards hold it (within the deadline, else an ERR_CLUSTER error).
   */
  readAfter?: number;
  /**
   * The caller gave up (its client went away): the generators' searches stop, native ones
   * included, and retrieve() rejects with AbortedError without recording anything.
   */
  signal?: AbortSignal;
}

/** One ranked candidate from one generator, best first. */
export interface GeneratedCandidate {
  adId: bigint;
  score: number;
}

/** What a generator receives for one request. */
export interface GeneratorInput {
  readonly request: RetrieveRequest;
  readonly features: UserFeatures;
  readonly scenario: string;
  /** Slots this generator fills. */
  readonly quota: number;
  /** How many to return: the quota plus a margin for ads that eligibility or de-duplication drop. */
  readonly fetch: number;
  /** Aborted when the deadline passes; a generator may stop early, its result is ignored anyway. */
  readonly signal: AbortSignal;
  /**
   * The request's eligibility, prepared once by the pipeline, for generators that can apply it
   * inside their search (an AdIndex filter). Absent when a generator is called outside a pipeline.
   */
  readonly eligibility?: RequestEligibility;
}

export interface FeedbackEvent {
  type: FeedbackType;
  adId: bigint;
  scenario: string;
  /** The generator that supplied the candidate. */
  source: string;
  /** The candidate's position among its generator's kept candidates (0 = best). */
  rank: number;
  /** The request's k (ranks are read relative to it). */
  k: number;
  /** Categories of the ad, when known (popularity per category). */
  category?: string;
}

export type FeedbackType = 'impression' | 'click' | 'conversion';
export const feedbackTypes: readonly FeedbackType[] = ['impression', 'click', 'conversion'];

/**
 * A source of candidates. Implementations return at most `input.fetch` ads, best first, and may
 * learn from feedback. The pipeline applies eligibility to every generator's candidates, except a
 * list the generator marked with markEligible() (it searched with the request's native filter and
 * no write was in flight).
 */
export interface CandidateGenerator {
  readonly name: string;
  generate(input: GeneratorInput): Promise<GeneratedCandidate[]>;
  /** Feedback on a candidate this or another generator supplied. */
  observe?(event: FeedbackEvent): void;
  /** Learned state to persist, and to restore after a restart. */
  saveState?(): unknown;
  restoreState?(state: unknown): void;
}

/** A merged candidate as the pipeline returns it. */
export interface Candidate {
  adId: bigint;
  /** The generator whose slot it fills. */
  source: string;
  /** Its score from that generator (scales differ between generators). */
  score: number;
  /** Position among the source's kept candidates (0 = best); feedback refers to it. */
  rank: number;
  /** Every generator that proposed it (de-duplication keeps one slot). */
  sources: string[];
}

export type GeneratorStatus = 'ok' | 'timeout' | 'error' | 'skipped';

export interface GeneratorReport {
  name: string;
  status: GeneratorStatus;
  /** Slots it was given. */
  quota: number;
  /** Candidates it returned (0 when it timed out or failed). */
  returned: number;
  /** Candidates of its own that made the final list. */
  kept: number;
  /** Time until it answered, or until it was cut off. */
  ms: number;
  error?: string;
  /** Set when its search covered only part of a sharded corpus: the shards that did not answer by the deadline. */
  missingShards?: number[];
}

export interface RetrieveResult {
  requestId: string;
  scenario: string;
  k: number;
  candidates: Candidate[];
  quotas: Record<string, number>;
  generators: GeneratorReport[];
  /** Whole request, from validation to merged answer. */
  ms: number;
}
