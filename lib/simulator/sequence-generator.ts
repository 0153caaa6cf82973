/**
 * The simulator's 'sequence' generator for one engine: the trained model's item embeddings in an
 * index of their own (the engine's behavioural corpus holds the world's embeddings, of another
 * space), searched through the engine's store. The index's eligibility attributes are written
 * when it is filled and refreshed with `refresh()`; between refreshes a campaign may run out of
 * budget, so the generator's answers are handed to the pipeline unmarked and the pipeline checks
 * each ad against the store (never an ineligible ad shown). A multi-task model's scenario heads
 * (ScenarioHeads) turn the encoder's user state into the query of the request's scenario.
 */
import { AdIndex } from '../ad-index';
import { EmbeddingCorpus } from '../corpus/embedding-corpus';
import type { CandidateEngine } from '../orchestration/engine';
import { ConfigError } from '../orchestration/errors';
import { SequenceGenerator } from '../orchestration/generators/sequence';
import type { CandidateGenerator, GeneratorInput } from '../orchestration/types';
import { requestEligibility } from '../orchestration/types';
import type { SequenceEncoder, SequenceSessions } from '../sequence';
import type { ScenarioHeads } from './scenario-heads';

export class SimulatorSequenceGenerator implements CandidateGenerator {
  readonly name = 'sequence';
  private readonly index: AdIndex;
  private readonly ids: BigInt64Array;
  private generator: SequenceGenerator | undefined;
  private engine: CandidateEngine | undefined;
  private corpus: EmbeddingCorpus | undefined;
  private readonly sessions: SequenceSessions | undefined;

  /** The ads the model knows (their ids are the model's item ids); with `heads`, the query is the request's scenario head's. */
  constructor(private readonly encoder: SequenceEncoder, adIds: readonly bigint[], private readonly heads?: ScenarioHeads) {
    if (heads && (heads.userDim !== encoder.dim || heads.itemDim !== encoder.dim)) {
      throw new ConfigError(`Expected scenario heads of the encoder's dim ${encoder.dim} but they map ${heads.userDim} to ${heads.itemDim}`);
    }
    this.sessions = heads ? encoder.sessions() : undefined;
    const rows = encoder.rows(adIds);
    this.ids = BigInt64Array.from(adIds.filter((_, i) => rows[i]! > 0));
    this.index = new AdIndex({ dim: encoder.dim, metric: 'ip', kind: 'flat', threads: 1 });
  }

  /** Fills the index from the engine's store (call once its ads are upserted). */
  async attach(engine: CandidateEngine): Promise<void> {
    const dim = this.encoder.dim;
    const table = this.encoder.itemEmbeddings();
    const rows = this.encoder.rows(Array.from(this.ids));
    const vectors = new Float32Array(this.ids.length * dim);
    rows.forEach((row, i) => vectors.set(table.subarray(row * dim, (row + 1) * dim), i * dim));
    await this.index.upsert(this.ids, vectors, engine.store.nativeAttributes(Array.from(this.ids)));
    this.engine = engine;
    this.corpus = new EmbeddingCorpus(this.index, engine.store);
    if (!this.heads) this.generator = new SequenceGenerator({ encoder: this.encoder, corpus: this.corpus });
  }

  /** Rewrites every ad's eligibility attributes from the engine's store (budgets spent since). */
  async refresh(): Promise<void> {
    if (this.engine) await this.index.setAttributes(this.ids, this.engine.store.nativeAttributes(Array.from(this.ids)));
  }

  async generate(input: GeneratorInput) {
    if (this.heads) return this.generateWithHeads(input);
    if (!this.generator) return [];
    return [...(await this.generator.generate(input))]; // a copy: unmarked, so the pipeline checks eligibility
  }

  /** The user state through the scenario's folded heads, one index search (answers unmarked, as above). */
  private async generateWithHeads(input: GeneratorInput) {
    const history = input.features.history;
    if (!this.corpus || input.fetch === 0 || !history) return [];
    const items = this.encoder.rows(history.items);
    if (!items.some((row) => row > 0)) return [];
    const histories = { items, offsets: Uint32Array.of(0, items.length), ...(history.actions ? { actions: this.encoder.actionRows(history.actions) } : {}) };
    const states = await this.sessions!.encode([input.request.userId], histories);
    if (input.signal.aborted) return [];
    const queries = this.heads!.query(states, input.scenario);
    const eligibility = input.eligibility ?? requestEligibility(input.features.geo, input.request.eligibility);
    const dim = this.encoder.dim;
    const best = new Map<bigint, number>(); // one search per interest; an ad's score is its best
    for (let k = 0; k < this.encoder.interests; k++) {
      const hit = await this.corpus.search(queries.subarray(k * dim, (k + 1) * dim), input.fetch, eligibility, input.signal);
      hit.adIds.forEach((id, i) => best.set(id, Math.max(best.get(id) ?? -Infinity, hit.scores[i]!)));
    }
    return [...best].map(([adId, score]) => ({ adId, score })).sort((a, b) => b.score - a.score).slice(0, input.fetch);
  }

  close(): void {
    this.sessions?.close();
    this.index.close();
  }
}
