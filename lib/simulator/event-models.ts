/**
 * The models trained on the simulator's logged events (event-log.ts) by cangen's multi-task
 * trainer: the unified model (engagement, click and conversion heads, one per label and scenario,
 * over one shared encoder) and the per-label models (the same command with one task). Every event
 * is an input token with `label@scenario` as its action (--scenario-input), so the encoder sees
 * what the user did where. Served through SequenceEncoder with the heads folded per scenario
 * (ScenarioHeads), or the plain user state where a model has no scorer/.
 */
import { ScenarioHeads, SequenceEncoder } from '../sequence';
import { eventLabels, eventsCsv, type EventLabel, type LoggedEvent } from './event-log';
import { hstuFlags, itemFeaturesFile, trainCached, type SequenceModel, type SequenceModelOptions } from './sequence-model';
import type { Marketplace } from './world';

export type EventModelName = 'unified' | EventLabel;
export const eventModelNames: readonly EventModelName[] = ['unified', ...eventLabels];

/**
 * The heads' blend per scenario at serving time. Head scores are softmax logits (log-likelihoods
 * of the ad given the user, label and scenario), so equal weights rank by the product of the
 * likelihoods: an ad the user clicks and then buys. Engagement is logged on one surface only.
 */
const servingWeights: Record<EventLabel, number> = { engagement: 1, click: 1, conversion: 1 };

/** The labels a model is trained to predict; the unified model early-stops on clicks (most of the value, and conversions are few). */
function tasksOf(name: EventModelName): { tasks: EventLabel[]; target: EventLabel } {
  return name === 'unified' ? { tasks: [...eventLabels], target: 'click' } : { tasks: [name], target: name };
}

/** `{ scenario: { task: weight } }` for the (task, scenario) pairs the log holds: the heads --scenario-heads makes. */
export function scenarioWeights(events: readonly LoggedEvent[], tasks: readonly EventLabel[]): Record<string, Partial<Record<EventLabel, number>>> {
  const out: Record<string, Partial<Record<EventLabel, number>>> = {};
  for (const e of events) if (tasks.includes(e.label)) (out[e.scenario] ??= {})[e.label] = servingWeights[e.label];
  return out;
}

/** The trainer's flags for `name` (besides --data, --item-features and --out). */
export function eventModelFlags(name: EventModelName, events: readonly LoggedEvent[], seed: number): string[] {
  const { tasks, target } = tasksOf(name);
  // Engagement happens on one surface: a model of it alone gets one head, served in every scenario.
  const perScenario = name !== 'engagement';
  return [
    '--format', 'events-csv', ...hstuFlags, '--seed', String(seed), '--tasks', tasks.join(','), '--target', target, '--scenario-input',
    ...(perScenario ? ['--scenario-heads', '--scenario-weights', JSON.stringify(scenarioWeights(events, tasks))] : []),
  ];
}

/** Trains (or reuses, in options.dir) model `name` on the logged events; skipped, with the reason, without PyTorch. */
export async function simulatorEventModel(world: Marketplace, events: readonly LoggedEvent[], name: EventModelName, options: SequenceModelOptions): Promise<SequenceModel> {
  return trainCached({ 'events.csv': eventsCsv(events), 'items.json': itemFeaturesFile(world) }, (file) => [
    '--data', file('events.csv'), '--item-features', file('items.json'), ...eventModelFlags(name, events, options.seed),
  ], options);
}

/** A trained model as the simulator serves it: the encoder, and its scenario heads when it has them. */
export interface ServedModel {
  encoder: SequenceEncoder;
  heads?: ScenarioHeads;
  /** History events carry `label@scenario` actions, conversions included (false: clicks only, no actions). */
  labelled: boolean;
}

export async function loadServedModel(modelDir: string, labelled: boolean): Promise<ServedModel> {
  const encoder = await SequenceEncoder.load(modelDir, { threads: 1 });
  try {
    return { encoder, heads: labelled ? await ScenarioHeads.load(modelDir) : undefined, labelled };
  } catch (error) {
    encoder.close();
    throw error;
  }
}

export function closeServedModel(model: ServedModel | undefined): void {
  model?.heads?.close();
  model?.encoder.close();
}
