/**
 * The simulator's logged events, the multi-task trainer's input: organic browsing (engagement,
 * Marketplace.browse) and, on every turn, a page of ads in one scenario (home, search or related,
 * drawn by scenarioTruth weight) from a simple logging policy: half the ads from the session's
 * category, half from random categories, never cold ones (newer than the log). The truth of THAT
 * scenario decides the ad clicks (pClick) and, for a clicked ad, the conversion (pConversion with
 * the ad's propensity). A clicked ad is one event, labelled by how far the user went: 'conversion'
 * (clicked, then converted) or 'click' (clicked only). Logging the conversion as a second event
 * on the ad just clicked would let a model predict it by copying the previous token (the
 * trainer's conversion HR@10 was 0.49 that way), which teaches it nothing about what converts.
 * Written as the trainer's events-csv (`user,item,timestamp,action,scenario`, the action column
 * holding the label) with a running counter as the time, so the order is kept.
 */
import type { Random } from '../orchestration/random';
import { pClick, pConversion, scenarioTruth, type Marketplace } from './world';

export type EventLabel = 'engagement' | 'click' | 'conversion';
export const eventLabels: readonly EventLabel[] = ['engagement', 'click', 'conversion'];

/** One logged event: an ad row (id = row + 1) and what the user did with it, where. */
export interface LoggedEvent {
  user: number;
  row: number;
  label: EventLabel;
  scenario: string;
  /** A running counter, increasing over the whole log (seconds). */
  time: number;
}

/** Organic browsing happens on the 'related' surface: Marketplace.browse decides its clicks with that scenario's truth. */
export const browseScenario = 'related';

/** Every user takes `pages` turns (all users' first turn, then their second, ...): a browsed page, then an ad page of `adPage` ads. */
export function eventLog(world: Marketplace, pages: number, random: Random, adPage = 16): LoggedEvent[] {
  const events: LoggedEvent[] = [];
  const scenarios = Object.keys(scenarioTruth);
  const log = (user: number, row: number, label: EventLabel, scenario: string) => events.push({ user, row, label, scenario, time: events.length + 1 });
  for (let p = 0; p < pages; p++) {
    for (let u = 0; u < world.nUsers; u++) {
      for (const row of world.browse(u, random)) log(u, row, 'engagement', browseScenario);
      const scenario = drawScenario(scenarios, random());
      const query = world.truthQuery(u, scenario);
      for (const row of world.adPage(u, random, adPage)) {
        const relevance = world.relevance(query, row);
        if (random() >= pClick(relevance)) continue;
        log(u, row, random() < pConversion(relevance, world.adConversion[row]!) ? 'conversion' : 'click', scenario);
      }
    }
  }
  return events;
}

/** The scenario whose cumulative scenarioTruth weight first exceeds `x` in [0, 1). */
export function drawScenario(scenarios: readonly string[], x: number): string {
  let i = 0;
  while (i < scenarios.length - 1 && x > scenarioTruth[scenarios[i]!]!.weight) x -= scenarioTruth[scenarios[i++]!]!.weight;
  return scenarios[i]!;
}

/** The log as the trainer's events-csv: `user,item,timestamp,action,scenario`, one event a row in time order. */
export function eventsCsv(events: readonly LoggedEvent[]): string {
  return `user,item,timestamp,action,scenario\n${events.map((e) => `u${e.user},${e.row + 1},${e.time},${e.label},${e.scenario}\n`).join('')}`;
}

/** A user's past as the served encoder takes it: ad ids and action names, oldest first. */
export interface EventHistory {
  items: string[];
  actions: string[];
}

/** The action name of an event as the model's actions.txt holds it (`label@scenario` when the trainer ran with --scenario-input). */
export const actionName = (label: EventLabel, scenario: string, scenarioInput: boolean) => (scenarioInput ? `${label}@${scenario}` : label);

/** Each user's events of the log as histories (every label: the encoder reads them all as inputs). */
export function historiesOf(events: readonly LoggedEvent[], users: number, scenarioInput: boolean): EventHistory[] {
  const out = Array.from({ length: users }, (): EventHistory => ({ items: [], actions: [] }));
  for (const e of events) {
    out[e.user]!.items.push(String(e.row + 1));
    out[e.user]!.actions.push(actionName(e.label, e.scenario, scenarioInput));
  }
  return out;
}

/** Each user's organic browsing clicks (engagement events), ad rows in time order: the 'browsing' model's log. */
export function engagementHistories(events: readonly LoggedEvent[], users: number): number[][] {
  const out = Array.from({ length: users }, (): number[] => []);
  for (const e of events) if (e.label === 'engagement') out[e.user]!.push(e.row);
  return out;
}

/** Events per label, in the order of eventLabels (labels with none left out). */
export function labelCounts(events: readonly LoggedEvent[]): Record<string, number> {
  const counts = eventLabels.map((label) => [label, events.filter((e) => e.label === label).length] as const);
  return Object.fromEntries(counts.filter(([, n]) => n > 0));
}
