/**
 * One retrieval: allocate quotas, run the scenario's generators in parallel under the deadline
 * (a late generator is cut off and reported, never awaited), filter eligibility, de-duplicate,
 * merge. It also keeps a short ledger of what it served, so feedback can name just the request
 * and the ad.
 */
import { randomBytes } from 'node:crypto';
import { AbortedError, CangenError, DimensionMismatchError, InvalidArgumentError, NonFiniteError } from '../errors';
import { integerIn, invalid } from '../validate';
import { compileFilter, type AdStore } from '../corpus/ad-store';
import type { QuotaAllocator, ServedReport } from './allocators/allocator';
import { UnknownGeneratorError } from './errors';
import { isMarkedEligible, mergeCandidates, missingShardsOf } from './merge';
import type { Scenarios } from './scenarios';
import { feedbackTypes, requestEligibility, type CandidateGenerator, type FeedbackEvent, type FeedbackType, type GeneratedCandidate, type GeneratorReport, type RetrieveRequest, type RetrieveResult } from './types';

export interface PipelineOptions {
  generators: readonly CandidateGenerator[];
  scenarios: Scenarios;
  allocator: QuotaAllocator;
  store: AdStore;
  /** Part of the deadline kept for merging (default: 10% of it, 1 to 5 ms). */
  mergeReserveMs?: number;
  /** Requests remembered for feedback by requestId (default 10,000). */
  ledgerSize?: number;
}

/** Feedback that names the request and the ad; the ledger supplies source, rank and scenario. */
export interface LedgerFeedback {
  requestId: string;
  adId: bigint;
  type: FeedbackType;
}

export type FeedbackInput = LedgerFeedback | FeedbackEvent;

interface LedgerEntry {
  scenario: string;
  k: number;
  adIds: BigInt64Array;
  sources: string[];
  ranks: Uint32Array;
}

export type RetrieveListener = (result: RetrieveResult) => void;
export type FeedbackListener = (event: FeedbackEvent) => void;

/** Why a request's signal aborts: one shared reason (an AbortError made per request costs a stack trace). */
const deadlineReason = new DOMException('The request is over: its deadline passed or it was answered', 'AbortError');

/** Errors that mean the request itself is wrong; they fail the request instead of one generator. */
function isCallerError(error: unknown): boolean {
  return error instanceof InvalidArgumentError || error instanceof DimensionMismatchError || error instanceof NonFiniteError;
}

export class Pipeline {
  readonly scenarios: Scenarios;
  readonly allocator: QuotaAllocator;
  readonly store: AdStore;
  private readonly generators = new Map<string, CandidateGenerator>();
  private readonly reserveMs: number | undefined;
  private readonly ledgerSize: number;
  private readonly ledger = new Map<string, LedgerEntry>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private sequence = 0;
  private readonly retrieveListeners: RetrieveListener[] = [];
  private readonly feedbackListeners: FeedbackListener[] = [];

  constructor(options: PipelineOptions) {
    for (const g of options.generators) this.generators.set(g.name, g);
    this.scenarios = options.scenarios;
    this.allocator = options.allocator;
    this.store = options.store;
    this.reserveMs = options.mergeReserveMs;
    this.ledgerSize = options.ledgerSize ?? 10_000;
    for (const s of this.scenarios) {
      for (const g of s.generators) {
        if (!this.generators.has(g)) {
          throw new UnknownGeneratorError(`Expected one of ${[...this.generators.keys()].map((n) => `'${n}'`).join(', ')} for scenario '${s.name}' generator but received the string '${g}'`);
        }
      }
    }
  }

  generator(name: string): CandidateGenerator | undefined {
    return this.generators.get(name);
  }

  get generatorNames(): string[] {
    return [...this.generators.keys()];
  }

  onRetrieve(listener: RetrieveListener): void {
    this.retrieveListeners.push(listener);
  }

  onFeedback(listener: FeedbackListener): void {
    this.feedbackListeners.push(listener);
  }

  async retrieve(request: RetrieveRequest): Promise<RetrieveResult> {
    const started = performance.now();
    if (request === null || typeof request !== 'object') throw invalid('a request object', 'request', request);
    if (typeof request.userId !== 'string') throw invalid('a string', 'request.userId', request.userId);
    const scenario = this.scenarios.get(request.scenario);
    const k = integerIn(request.k ?? scenario.k, 'request.k', 1, 100_000);
    const deadlineMs = integerIn(request.deadlineMs ?? scenario.deadlineMs, 'request.deadlineMs', 1, 60_000);
    const features = request.features ?? {};
    const filter = compileFilter(request.eligibility);
    const eligibility = requestEligibility(features.geo, request.eligibility);
    const abandoned = request.signal;
    if (abandoned !== undefined && !(abandoned instanceof AbortSignal)) throw invalid('an AbortSignal', 'request.signal', abandoned);
    if (abandoned?.aborted) throw new AbortedError('The request was abandoned before it started');
    const names = scenario.generators;
    const quotas = this.allocator.allocate(scenario.name, k, names);
    const budgetMs = deadlineMs - (this.reserveMs ?? Math.min(5, Math.max(1, deadlineMs * 0.1)));

    const controller = new AbortController();
    const lists: (GeneratedCandidate[] | undefined)[] = names.map(() => undefined);
    const fetches = names.map((name) => Math.ceil(quotas[name]! * scenario.overfetch));
    const reports: GeneratorReport[] = names.map((name) => ({ name, status: 'skipped', quota: quotas[name]!, returned: 0, kept: 0, ms: 0 }));
    let callerError: unknown;
    const run = async (i: number, refill = false) => {
      const name = names[i]!;
      const t0 = performance.now();
      const report = reports[i]!;
      if (!refill) report.status = 'timeout'; // a late refill keeps the first answer
      try {
        const list = await this.generators.get(name)!.generate({
          request,
          features,
          scenario: scenario.name,
          quota: quotas[name]!,
          fetch: fetches[i]!,
          signal: controller.signal,
          eligibility,
        });
        if (controller.signal.aborted) return; // too late: stays 'timeout'
        lists[i] = list;
        report.status = 'ok';
        report.returned = list.length;
        const missing = missingShardsOf(list);
        if (missing) report.missingShards = [...missing];
      } catch (error) {
        if (controller.signal.aborted) return;
        if (isCallerError(error)) callerError ??= error;
        report.status = 'error';
        report.error = error instanceof CangenError ? `${error.code}: ${error.message}` : String(error);
      } finally {
        if (!controller.signal.aborted) report.ms += performance.now() - t0;
      }
    };
    const eligible = (adId: bigint) => this.store.eligible(adId, features.geo, filter);
    const merge = () =>
      mergeCandidates(
        names.map((name, i) => {
          const list = lists[i] ?? [];
          return { name, quota: quotas[name]!, list, eligible: isMarkedEligible(list) };
        }),
        k,
        eligible,
      );

    let timer: NodeJS.Timeout | undefined;
    let late = false;
    let stopWaiting!: () => void;
    const expired = new Promise<void>((resolve) => {
      stopWaiting = resolve;
      timer = setTimeout(() => resolve((late = true) && undefined), Math.max(0, budgetMs - (performance.now() - started)));
    });
    /** Waits for `work` until the deadline; an abandoned request stops waiting at once and aborts its generators' work. */
    const wait = async (work: Promise<unknown>) => {
      abandoned?.addEventListener('abort', stopWaiting, { once: true });
      try {
        await Promise.race([work, expired]);
      } finally {
        abandoned?.removeEventListener('abort', stopWaiting);
      }
      if (abandoned?.aborted) {
        clearTimeout(timer);
        controller.abort(abandoned.reason);
        throw new AbortedError('The request was abandoned by its caller; its searches were stopped');
      }
    };
    await wait(Promise.all(names.map((name, i) => (quotas[name]! > 0 ? run(i) : undefined))));
    if (callerError) {
      clearTimeout(timer);
      controller.abort(deadlineReason);
      throw callerError;
    }
    let merged = merge();
    // Short of k (generators without features for this user, many ineligible ads): one more
    // round asks the generators that may have more, within the same deadline.
    const deficit = k - merged.candidates.length;
    const more = names.map((_, i) => i).filter((i) => reports[i]!.status === 'ok' && reports[i]!.returned >= fetches[i]! && fetches[i]! > 0);
    if (deficit > 0 && more.length > 0 && !late) {
      // Each is asked for the whole deficit: how much their lists overlap is not known in advance.
      for (const i of more) fetches[i]! += Math.ceil(deficit * scenario.overfetch);
      await wait(Promise.all(more.map((i) => run(i, true))));
      merged = merge();
    }
    clearTimeout(timer);
    controller.abort(deadlineReason);
    const cutAt = performance.now();
    for (const report of reports) if (report.status === 'timeout') report.ms = cutAt - started;
    if (callerError) throw callerError;

    merged.kept.forEach((kept, i) => (reports[i]!.kept = kept));
    this.allocator.recordServed(
      scenario.name,
      k,
      reports.map((r): ServedReport => ({ generator: r.name, status: r.status, kept: r.kept, ms: r.ms })),
      budgetMs,
    );
    const requestId = `${this.idPrefix}-${(++this.sequence).toString(36)}`;
    this.remember(requestId, scenario.name, k, merged.candidates);
    const result: RetrieveResult = {
      requestId,
      scenario: scenario.name,
      k,
      candidates: merged.candidates,
      quotas,
      generators: reports,
      ms: performance.now() - started,
    };
    for (const listener of this.retrieveListeners) listener(result);
    return result;
  }

  /**
   * Applies feedback: the allocator learns the reward of the candidate's slot, generators that
   * learn (popularity) observe it. Returns how many events were applied and how many named a
   * request the ledger no longer holds (or an ad that request did not serve).
   */
  feedback(events: readonly FeedbackInput[]): { accepted: number; unmatched: number } {
    let accepted = 0;
    let unmatched = 0;
    events.forEach((input, i) => {
      if (!feedbackTypes.includes(input?.type)) throw invalid(`one of ${feedbackTypes.map((t) => `'${t}'`).join(', ')}`, `events[${i}].type`, input?.type);
      if (typeof input.adId !== 'bigint') throw invalid('a bigint ad id', `events[${i}].adId`, input.adId);
      const event = 'requestId' in input ? this.resolve(input) : this.checkEvent(input, i);
      if (!event) {
        unmatched++;
        return;
      }
      event.category ??= this.store.categoryOf(event.adId);
      const scenario = this.scenarios.get(event.scenario);
      this.allocator.recordFeedback(event, scenario.rewards[event.type]);
      for (const g of this.generators.values()) g.observe?.(event);
      for (const listener of this.feedbackListeners) listener(event);
      accepted++;
    });
    return { accepted, unmatched };
  }

  private checkEvent(e: FeedbackEvent, i: number): FeedbackEvent {
    this.scenarios.get(e.scenario);
    if (typeof e.source !== 'string') throw invalid('a generator name', `events[${i}].source`, e.source);
    integerIn(e.rank, `events[${i}].rank`, 0, 100_000);
    integerIn(e.k, `events[${i}].k`, 1, 100_000);
    return { ...e };
  }

  private resolve(input: LedgerFeedback): FeedbackEvent | undefined {
    const entry = this.ledger.get(input.requestId);
    if (!entry) return undefined;
    const at = entry.adIds.indexOf(input.adId);
    if (at < 0) return undefined;
    return { type: input.type, adId: input.adId, scenario: entry.scenario, source: entry.sources[at]!, rank: entry.ranks[at]!, k: entry.k };
  }

  private remember(requestId: string, scenario: string, k: number, candidates: readonly { adId: bigint; source: string; rank: number }[]): void {
    if (this.ledgerSize === 0) return;
    const entry: LedgerEntry = {
      scenario,
      k,
      adIds: BigInt64Array.from(candidates, (c) => c.adId),
      sources: candidates.map((c) => c.source),
      ranks: Uint32Array.from(candidates, (c) => c.rank),
    };
    this.ledger.set(requestId, entry);
    if (this.ledger.size > this.ledgerSize) this.ledger.delete(this.ledger.keys().next().value!);
  }
}
