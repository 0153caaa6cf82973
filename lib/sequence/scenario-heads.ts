/**
 * A multi-task model's scenario heads folded into one query (docs/TRAINING.md "Several labels and
 * scenarios"). The multi-task export's scorer/ is a
 * LearnedScorer of kind 'dot' with a projection per head: head_h(u, x) = (P_h u) . x, and a
 * scenario blends them with weights w_{s,h}. Blending is linear, so the blended score is
 * (Q_s u) . x with Q_s = sum_h w_{s,h} P_h: one query for the flat index of the item embeddings,
 * so the generator stays an index search under the engine's eligibility filter. A scenario the
 * model does not know gets the mean of its scenarios' blends (every surface at once).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFormatError } from '../scorer/errors';
import { readModelDirectory } from '../scorer/model';
import { LearnedScorer } from '../scorer/scorer';

export class ScenarioHeads {
  /** Q_s per scenario, itemDim x userDim row-major, built on first use. */
  private readonly folded = new Map<string, Float32Array>();

  private constructor(
    private readonly scorer: LearnedScorer,
    /** dot.proj: heads x itemDim x userDim. */
    private readonly projections: Float32Array,
  ) {}

  /** The heads of an exported model directory (MODEL/scorer), or undefined when it has none. */
  static async load(modelDir: string): Promise<ScenarioHeads | undefined> {
    const dir = join(modelDir, 'scorer');
    if (!existsSync(join(dir, 'config.json'))) return undefined;
    const { config, tensors } = await readModelDirectory(dir);
    if (config.kind !== 'dot' || !config.dot?.projection) {
      throw new ModelFormatError(`Expected a dot scorer with per-head projections in ${dir} but found kind '${config.kind}'${config.kind === 'dot' ? ' without dot.projection' : ''}`);
    }
    return new ScenarioHeads(await LearnedScorer.load(dir, { threads: 1 }), tensors.get('dot.proj')!.data);
  }

  get heads(): readonly string[] {
    return this.scorer.heads;
  }
  get scenarios(): readonly string[] {
    return this.scorer.scenarios;
  }
  get userDim(): number {
    return this.scorer.userDim;
  }
  get itemDim(): number {
    return this.scorer.itemDim;
  }

  /**
   * The blend of `scenario` as the scorer resolves it; a single-head model without scenarios: that
   * head; a scenario the model does not know: the mean of its scenarios' blends.
   */
  weights(scenario: string): Float32Array {
    const known = this.scorer.scenarios;
    if (known.length === 0 && this.heads.length === 1) return Float32Array.of(1);
    if (known.includes(scenario) || known.length === 0) return this.scorer.headWeights({ scenario });
    const mean = new Float32Array(this.heads.length);
    for (const name of known) this.scorer.headWeights({ scenario: name }).forEach((w, h) => (mean[h]! += w / known.length));
    return mean;
  }

  /** q = Q_s u for each of `users` (n x userDim): n x itemDim. */
  query(users: Float32Array, scenario: string): Float32Array {
    const du = this.userDim;
    const dx = this.itemDim;
    // Unknown names share one entry (the mean blend), so the cache holds at most the model's scenarios + 1.
    const key = this.scorer.scenarios.includes(scenario) ? scenario : '';
    let q = this.folded.get(key);
    if (!q) {
      const w = this.weights(scenario);
      const sum = new Float64Array(dx * du);
      w.forEach((wh, h) => {
        if (wh !== 0) for (let i = 0; i < dx * du; i++) sum[i]! += wh * this.projections[h * dx * du + i]!;
      });
      q = Float32Array.from(sum);
      this.folded.set(key, q);
    }
    const n = users.length / du;
    const out = new Float32Array(n * dx);
    for (let u = 0; u < n; u++) {
      for (let i = 0; i < dx; i++) {
        let s = 0;
        for (let j = 0; j < du; j++) s += q[i * du + j]! * users[u * du + j]!;
        out[u * dx + i] = s;
      }
    }
    return out;
  }

  close(): void {
    this.scorer.close();
  }
}
