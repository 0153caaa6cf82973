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
import { SequenceGenerator } from '../orchestration/generators/sequence';
import type { CandidateGenerator, GeneratorInput } from '../orchestration/types';
import type { ScenarioHeads, SequenceEncoder } from '../sequence';

export class SimulatorSequenceGenerator implements CandidateGenerator {
  readonly name = 'sequence';
  private readonly index: AdIndex;
  private readonly ids: BigInt64Array;
  private generator: SequenceGenerator | undefined;
  private engine: CandidateEngine | undefined;

  /** The ads the model knows (their ids are the model's item ids); with `heads`, the query is the request's scenario head's. */
  constructor(private readonly encoder: SequenceEncoder, adIds: readonly bigint[], private readonly heads?: ScenarioHeads) {
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
    this.generator = new SequenceGenerator({ encoder: this.encoder, corpus: new EmbeddingCorpus(this.index, engine.store), heads: this.heads });
  }

  /** Rewrites every ad's eligibility attributes from the engine's store (budgets spent since). */
  async refresh(): Promise<void> {
    if (this.engine) await this.index.setAttributes(this.ids, this.engine.store.nativeAttributes(Array.from(this.ids)));
  }

  async generate(input: GeneratorInput) {
    if (!this.generator) return [];
    return [...(await this.generator.generate(input))]; // a copy: unmarked, so the pipeline checks eligibility
  }

  close(): void {
    this.index.close();
  }
}
