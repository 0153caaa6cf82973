/**
 * Which trained model serves best, per scenario: one learned-quota arm per sequence model over
 * the same world, log and requests ('untrained': today's untrained generators alone; 'browsing':
 * the HSTU on organic clicks; 'engagement', 'click', 'conversion': one label each on every logged
 * event; 'unified': one model with every label's heads per scenario). Models that cannot be
 * trained here (no PyTorch, or a trainer without --tasks) leave their arm out, saying why.
 */
import type { RunModelName, SequenceSummary } from './run-models';
import { modelForRun } from './run-models';
import { closeServedModel, type ServedModel } from './event-models';
import { resolveOptions, runArms, withModelDir, worldWithLog, type ArmResult, type ArmSpec, type ResolvedOptions, type SimulationOptions } from './run';

export const comparedModels: readonly RunModelName[] = ['browsing', 'engagement', 'click', 'conversion', 'unified'];

export interface ComparisonOptions extends Omit<SimulationOptions, 'sequence' | 'sequenceModel'> {
  /** The trained models to compare with the untrained generators (default: comparedModels). */
  models?: RunModelName[];
}

export interface ModelComparison {
  options: Omit<ResolvedOptions, 'sequence' | 'sequenceModel'> & { models: RunModelName[] };
  /** Each model's training (or why it is absent). */
  models: Partial<Record<RunModelName, SequenceSummary>>;
  /** 'untrained' and each trained model's arm, all under learned quotas. */
  arms: Record<string, ArmResult>;
  seconds: number;
}

export async function compareModels(options: ComparisonOptions = {}): Promise<ModelComparison> {
  const started = performance.now();
  const o = { ...resolveOptions(options), models: options.models ?? [...comparedModels] };
  const { world, events } = worldWithLog(o);
  const served: { name: RunModelName; model: ServedModel }[] = [];
  const models: ModelComparison['models'] = {};
  try {
    await withModelDir(options.modelDir, async (dir) => {
      for (const name of o.models) {
        const { model, summary } = await modelForRun(world, events, name, { dir, seed: o.seed, onStatus: options.onStatus });
        models[name] = summary;
        if (model) served.push({ name, model });
      }
    });
    const specs: ArmSpec[] = [{ name: 'untrained', allocator: 'learned' }, ...served.map(({ name, model }) => ({ name, allocator: 'learned' as const, model }))];
    const run = await runArms(world, events, o, specs, { onProgress: options.onProgress });
    const { sequence: _sequence, sequenceModel: _model, ...settings } = o; // one arm per model: no single sequence model
    return { options: settings, models, arms: run.results, seconds: (performance.now() - started) / 1000 };
  } finally {
    for (const { model } of served) closeServedModel(model);
  }
}
