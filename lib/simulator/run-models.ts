/**
 * The trained models a simulation serves, by name: 'browsing' (the HSTU on organic browsing
 * clicks alone, the simulator's first sequence model) or one trained on every logged event
 * (event-models.ts: 'unified', 'engagement', 'click', 'conversion'). Each is trained once into
 * its own folder (reused while log and flags match), loaded, and summarised for the report.
 */
import { join } from 'node:path';
import { engagementHistories, labelCounts, type LoggedEvent } from './event-log';
import { loadServedModel, simulatorEventModel, type EventModelName, type ServedModel } from './event-models';
import { simulatorSequenceModel } from './sequence-model';
import type { Marketplace } from './world';

export type RunModelName = 'browsing' | EventModelName;

/** A model of the run: trained or reused (with its log's size), or why it is absent. */
export interface SequenceSummary {
  model: RunModelName;
  status: 'trained' | 'reused' | 'skipped' | 'off';
  reason?: string;
  /** Training (or cache look-up) seconds. */
  seconds?: number;
  /** The events it was trained on: browsing clicks ('browsing') or every logged event. */
  logEvents: number;
  /** Events per label of the log it was trained on. */
  labels: Record<string, number>;
  /** The ads the model knows. */
  items?: number;
  /** Its heads (models with scenario heads). */
  heads?: string[];
}

export interface RunModelOptions {
  /** The model goes to dir/<name>. */
  dir: string;
  seed: number;
  onStatus?: (line: string) => void;
}

/** Trains (or reuses) and loads model `name`; without PyTorch (or, for event models, a trainer without --tasks) the summary says why. */
export async function modelForRun(world: Marketplace, events: readonly LoggedEvent[], name: RunModelName, options: RunModelOptions): Promise<{ model?: ServedModel; summary: SequenceSummary }> {
  const browsing = name === 'browsing';
  const trainedOn = browsing ? events.filter((e) => e.label === 'engagement') : events;
  const labels = labelCounts(trainedOn);
  const base = { model: name, logEvents: trainedOn.length, labels };
  const what = Object.entries(labels).map(([label, n]) => `${n.toLocaleString('en-US')} ${label}`).join(', ');
  options.onStatus?.(`${name} model: ${what} events of ${world.nUsers.toLocaleString('en-US')} users; training an HSTU (cangen train)...`);
  const training = { dir: join(options.dir, name), seed: options.seed, log: (line: string) => options.onStatus?.(`  ${line}`) };
  const trained = browsing
    ? await simulatorSequenceModel(world, engagementHistories(events, world.nUsers), training)
    : await simulatorEventModel(world, events, name, training);
  if (trained.status === 'skipped') {
    options.onStatus?.(`${name} model skipped: ${trained.reason}`);
    return { summary: { ...base, status: 'skipped', reason: trained.reason } };
  }
  const model = await loadServedModel(trained.modelDir, !browsing);
  const heads = model.heads ? [...model.heads.heads] : undefined;
  options.onStatus?.(`${name} model ${trained.status} in ${trained.seconds.toFixed(1)} s (${trained.modelDir}): ${model.encoder.numItems.toLocaleString('en-US')} ads known${heads ? `, heads ${heads.join(' ')}` : ''}`);
  return { model, summary: { ...base, status: trained.status, seconds: trained.seconds, items: model.encoder.numItems, ...(heads ? { heads } : {}) } };
}
