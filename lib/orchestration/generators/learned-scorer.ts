/**
 * The bridge to lib/scorer: a LearnedScorer (dot, MLP or Mixture-of-Logits, multi-head) as the
 * Scorer of a ScorerGenerator. Full mode is its fused top-k scan; two-stage re-ranks the first
 * stage's ids with it (the model is the reranker). The request's scenario picks the model's head
 * blend when the model has one. Attached to a corpus (the CandidateEngine attaches it to its
 * behavioural corpus), the model reads that corpus's ads and the full scan applies each request's
 * compiled filter inside the scan. Concurrent full-mode requests with the same blend and filter
 * share scans (lib/request-batcher.ts; a scan carries k down to a quarter of its largest): the
 * model takes several users per call.
 */
import type { EmbeddingCorpus } from '../../corpus/embedding-corpus';
import { compiledFilter, localIndex } from '../../corpus/search-index';
import type { BlendOptions, LearnedScorer } from '../../scorer';
import { maxK } from '../../defaults';
import { DimensionMismatchError } from '../../errors';
import { RequestBatcher, splitBySize, type BatchingOptions, type BatcherStats } from '../../request-batcher';
import { integerIn } from '../../validate';
import { ConfigError } from '../errors';
import { markEligible } from '../merge';
import type { GeneratedCandidate, RequestEligibility } from '../types';
import type { Scorer } from './scorer';

export interface LearnedScorerAdapterOptions {
  /** Cross-request batching of full-mode scans (default: on, 64 users a scan, 5 ms at most). */
  batching?: BatchingOptions;
}

interface TopKRequest {
  user: Float32Array;
  k: number;
  blend: BlendOptions;
  eligibility: RequestEligibility | undefined;
}

export class LearnedScorerAdapter implements Scorer {
  readonly name: string;
  readonly reranker: LearnedScorer;
  private corpus: EmbeddingCorpus | undefined;
  private attaching: Promise<void> | undefined;
  private readonly batcher: RequestBatcher<TopKRequest, GeneratedCandidate[]>;

  constructor(model: LearnedScorer, options: LearnedScorerAdapterOptions = {}) {
    this.reranker = model;
    this.name = `learned:${model.kind}`;
    this.batcher = new RequestBatcher((batch, _key, signal) => this.scan(batch, signal), options.batching, 'LearnedScorerAdapter options.batching',
      (requests) => splitBySize(requests, fetchOf));
  }

  /** Scans made and the requests they answered. */
  get batching(): Readonly<BatcherStats> {
    return this.batcher.stats;
  }

  /** The scenario's blend when the model defines it; otherwise the model's default. */
  blend(scenario: string | undefined): BlendOptions {
    return scenario !== undefined && this.reranker.scenarios.includes(scenario) ? { scenario } : {};
  }

  /**
   * Makes the model read `corpus`'s ads (LearnedScorer.attach on its index, unless already
   * attached there). Its failure (a model holding ads of its own, an index without its vectors)
   * rejects this Promise and every later topK.
   */
  attach(corpus: EmbeddingCorpus): Promise<void> {
    if (this.corpus) return Promise.reject(new ConfigError(`Expected a LearnedScorerAdapter used by one engine: ${this.name} is attached to a corpus already`));
    this.corpus = corpus;
    try {
      this.attaching = this.reranker.attachedIndex === corpus.index ? Promise.resolve() : this.reranker.attach(localIndex(corpus.index, this.name));
    } catch (error) {
      this.attaching = Promise.reject(error);
    }
    this.attaching.catch(() => undefined);  // reported to whoever awaits it
    return this.attaching;
  }

  async topK(user: Float32Array, k: number, scenario?: string, eligibility?: RequestEligibility, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    // Checked here: a bad request must fail alone, not the scan it would share.
    if (!(user instanceof Float32Array) || user.length !== this.reranker.userDim) {
      throw new DimensionMismatchError(`Expected a Float32Array of userDim ${this.reranker.userDim} values for user but received ${user instanceof Float32Array ? user.length : typeof user}`);
    }
    integerIn(k, 'k', 1, maxK);
    await this.attaching;
    const blend = this.blend(scenario);
    const filtered = this.corpus ? eligibility : undefined;
    const key = `${blend.scenario ?? ''}\u0001${filtered?.key ?? ''}`;
    // Copied: the caller may reuse its array while the request is queued.
    return this.batcher.submit(key, { user: user.slice(), k, blend, eligibility: filtered }, signal);
  }

  /** One scan for the users of one blend and filter, at the largest k among them; each gets its own k. */
  private async scan(batch: readonly TopKRequest[], signal: AbortSignal | undefined): Promise<GeneratedCandidate[][]> {
    const first = batch[0]!;
    const eligible = first.eligibility ? compiledFilter(await this.corpus!.filterFor(first.eligibility), this.name) : undefined;
    const dim = this.reranker.userDim;
    const users = batch.length === 1 ? first.user : new Float32Array(batch.length * dim);
    if (batch.length > 1) batch.forEach((b, i) => users.set(b.user, i * dim));
    const k = Math.max(...batch.map(fetchOf));
    const results = await this.reranker.search(users, k, { ...first.blend, ...(signal ? { signal } : {}), ...(eligible ? { eligible } : {}) });
    return batch.map((b, i) => {
      const { ids, scores } = results.row(i);
      const excluded = b.eligibility?.excludeAds;
      const out: GeneratedCandidate[] = [];
      for (let j = 0; j < ids.length && out.length < b.k; j++) if (!excluded?.has(ids[j]!)) out.push({ adId: ids[j]!, score: scores[j]! });
      return eligible ? markEligible(out) : out;
    });
  }
}

/** Results a request needs from the scan: its k and its excluded ads, which are not in the compiled filter and are dropped after. */
function fetchOf(request: TopKRequest): number {
  return request.k + (request.eligibility?.excludeAds?.size ?? 0);
}
