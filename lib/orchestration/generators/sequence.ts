/**
 * Sequence retrieval: what the user just did, through a trained sequence encoder (HSTU or SASRec,
 * lib/sequence), to query embeddings that retrieve from the corpus. The history is the request's
 * own (`features.history`) or, for a request that brings only a user id, the user-history store's.
 * Per-user sessions make a history that grew by a few events cost a few steps. The dot head
 * searches the corpus's index under the request's eligibility filter; a Mixture-of-Logits head is
 * the model's exported scorer attached to the same corpus (LearnedScorer.attach), filtered inside
 * its scan. A multi-task model (one head per label and scenario) folds the request's scenario blend
 * of its heads into the query (ScenarioHeads), so one search serves each surface with its own mix.
 * The corpus's ads must carry the model's item embeddings (encoder.itemEmbeddings()), and their ids
 * must be the model's item ids.
 */
import type { CorpusHit, EmbeddingCorpus } from '../../corpus/embedding-corpus';
import { compiledFilter, localIndex } from '../../corpus/search-index';
import type { UserHistoryStore } from '../../history';
import type { LearnedScorer } from '../../scorer';
import type { ScenarioHeads, SequenceEncoder, SequenceHistories, SequenceSessions } from '../../sequence';
import { ConfigError } from '../errors';
import { markEligible, markPartial } from '../merge';
import { requestEligibility, type CandidateGenerator, type GeneratedCandidate, type GeneratorInput, type UserHistory } from '../types';

export interface SequenceGeneratorOptions {
  name?: string;
  encoder: SequenceEncoder;
  /** The ads, in the encoder's item space (searched with the dot head). */
  corpus: EmbeddingCorpus;
  /** Histories of users whose requests carry none. */
  histories?: UserHistoryStore;
  /** The model's Mixture-of-Logits head (`LearnedScorer.load(dir + '/scorer')`), holding no ads: it is attached to `corpus`'s index. */
  scorer?: LearnedScorer;
  /** Per-user sessions (default: `encoder.sessions()`; false: every request encodes its whole window). */
  sessions?: SequenceSessions | false;
  /** A multi-task model's heads (`ScenarioHeads.load(dir)`): the query is the request's scenario blend of them. */
  heads?: ScenarioHeads;
}

export class SequenceGenerator implements CandidateGenerator {
  readonly name: string;
  readonly encoder: SequenceEncoder;
  private readonly corpus: EmbeddingCorpus;
  private readonly histories: UserHistoryStore | undefined;
  private readonly scorer: LearnedScorer | undefined;
  private readonly sessions: SequenceSessions | undefined;
  private readonly heads: ScenarioHeads | undefined;
  /** Resolves once the scorer (if any) reads the corpus's ads; generate() waits for it. */
  readonly ready: Promise<void>;

  constructor(options: SequenceGeneratorOptions) {
    this.name = options.name ?? 'sequence';
    this.encoder = options.encoder;
    this.corpus = options.corpus;
    this.histories = options.histories;
    this.scorer = options.scorer;
    this.heads = options.heads;
    if (this.corpus.dim !== this.encoder.dim) {
      throw new ConfigError(`Expected a corpus of the encoder's dim ${this.encoder.dim} for the sequence generator but it has dim ${this.corpus.dim}`);
    }
    if (this.heads && (this.heads.userDim !== this.encoder.dim || this.heads.itemDim !== this.encoder.dim)) {
      throw new ConfigError(`Expected scenario heads of the encoder's dim ${this.encoder.dim} but they map ${this.heads.userDim} to ${this.heads.itemDim}`);
    }
    this.ready = !this.scorer || this.scorer.attachedIndex === this.corpus.index ? Promise.resolve() : this.scorer.attach(localIndex(this.corpus.index, 'a sequence model with a Mixture-of-Logits scorer'));
    this.ready.catch(() => undefined);  // reported to whoever awaits it
    this.sessions = options.sessions === false ? undefined : options.sessions ?? this.encoder.sessions();
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    if (input.fetch === 0) return [];
    await this.ready;
    const histories = input.features.history ? this.fromRequest(input.features.history) : await this.fromStore(input.request.userId);
    if (!histories) return [];
    const { userId } = input.request;
    const states = this.sessions ? await this.sessions.encode([userId], histories) : await this.encoder.encode(histories);
    if (input.signal.aborted) return [];
    const queries = this.heads ? this.heads.query(states, input.scenario) : states;
    const eligibility = input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility);
    const dim = this.encoder.dim;
    // One query per interest, searched in one call (the corpus batches searches made together);
    // an ad's score is its best over the interests.
    const interests = Array.from({ length: this.encoder.interests }, (_, k) => queries.subarray(k * dim, (k + 1) * dim));
    const hits = this.scorer
      ? await this.scoreWithHead(queries, input.fetch, eligibility, input.signal)
      : await Promise.all(interests.map((query) => this.corpus.search(query, input.fetch, eligibility, input.signal)));
    const best = new Map<bigint, number>();
    let eligible = true;
    const missing = new Set<number>();
    for (const hit of hits) {
      eligible &&= hit.eligible === true;
      for (const shard of hit.missingShards ?? []) missing.add(shard);
      hit.adIds.forEach((id, i) => best.set(id, Math.max(best.get(id) ?? -Infinity, hit.scores[i]!)));
    }
    const out = [...best].map(([adId, score]) => ({ adId, score })).sort((a, b) => b.score - a.score).slice(0, input.fetch);
    markPartial(out, [...missing].sort((a, b) => a - b));
    return eligible ? markEligible(out) : out;
  }

  /** The Mixture-of-Logits head's top-k for every interest (rows of `queries`), in one scan. */
  private async scoreWithHead(queries: Float32Array, k: number, eligibility: NonNullable<GeneratorInput['eligibility']>, signal: AbortSignal): Promise<CorpusHit[]> {
    const filter = compiledFilter(await this.corpus.filterFor(eligibility), 'a Mixture-of-Logits sequence scorer');
    const results = await this.scorer!.search(queries, k, { eligible: filter, signal });
    return Array.from(results, ({ ids, scores }) => ({ adIds: Array.from(ids), scores: Array.from(scores), eligible: true }));
  }

  /** The request's own history; undefined when none of its items is known to the model. */
  private fromRequest(history: UserHistory): SequenceHistories | undefined {
    const items = this.encoder.rows(history.items);
    if (!items.some((row) => row > 0)) return undefined;
    return {
      items,
      offsets: Uint32Array.of(0, items.length),
      ...(history.actions ? { actions: this.encoder.actionRows(history.actions) } : {}),
      ...(history.times ? { times: Float64Array.from(history.times) } : {}),
    };
  }

  /** The stored history of `userId`; undefined without a store or known events. */
  private async fromStore(userId: string): Promise<SequenceHistories | undefined> {
    if (!this.histories) return undefined;
    const batch = await this.histories.recent(userId);
    const items = gather(batch.itemCodes, this.encoder.rows(batch.itemNames));
    if (!items.some((row) => row > 0)) return undefined;
    return {
      items,
      offsets: Uint32Array.from(batch.offsets),
      actions: gather(batch.actionCodes, this.encoder.actionRows(batch.actionNames)),
      times: batch.times,
    };
  }
}

/** Per event, the row of its dictionary code (0 for code -1, no action). A plain loop: this runs per request. */
function gather(codes: Int32Array, rows: Int32Array): Int32Array {
  const out = new Int32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    out[i] = code < 0 ? 0 : rows[code]!;
  }
  return out;
}
