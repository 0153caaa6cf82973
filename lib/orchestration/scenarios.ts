/**
 * A scenario is a place ads are shown (home feed, search, related items): it names its
 * generators, its default k and deadline, and what a click or a conversion is worth there, which
 * is what the allocator maximises.
 */
import { integerIn, invalid, knownOptions } from '../validate';
import { UnknownScenarioError } from './errors';
import type { FeedbackType } from './types';

export interface ScenarioConfig {
  name: string;
  /** Generators that serve this scenario. */
  generators: string[];
  /** Candidates per request (default 200). */
  k?: number;
  /** Time budget per request in ms (default 50). */
  deadlineMs?: number;
  /** Value of each feedback type (default impression 0, click 1, conversion 3). */
  rewards?: Partial<Record<FeedbackType, number>>;
  /** Shares for the static allocator (default: equal). */
  staticShares?: Record<string, number>;
  /** Each generator returns quota x overfetch candidates, so eligibility and de-duplication leave enough (default 1.5). */
  overfetch?: number;
}

export type Scenario = Required<Omit<ScenarioConfig, 'staticShares'>> & {
  staticShares?: Record<string, number>;
  rewards: Record<FeedbackType, number>;
};

const names = ['name', 'generators', 'k', 'deadlineMs', 'rewards', 'staticShares', 'overfetch'];

export function parseScenario(config: ScenarioConfig, where = 'scenario'): Scenario {
  const o = knownOptions(config, where, names);
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(o.name)) throw invalid('a name of 1 to 64 letters, digits, _ . -', `${where}.name`, o.name);
  if (!Array.isArray(o.generators) || o.generators.length === 0 || o.generators.some((g) => typeof g !== 'string')) {
    throw invalid('a non-empty array of generator names', `${where}.generators`, o.generators);
  }
  const overfetch = o.overfetch ?? 1.5;
  if (typeof overfetch !== 'number' || !(overfetch >= 1 && overfetch <= 100)) throw invalid('a number between 1 and 100', `${where}.overfetch`, overfetch);
  const rewards = knownOptions(o.rewards, `${where}.rewards`, ['impression', 'click', 'conversion']);
  for (const [key, value] of Object.entries(rewards)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalid('a number >= 0', `${where}.rewards.${key}`, value);
  }
  return {
    name: o.name,
    generators: [...(o.generators as string[])],
    k: integerIn(o.k ?? 200, `${where}.k`, 1, 100_000),
    deadlineMs: integerIn(o.deadlineMs ?? 50, `${where}.deadlineMs`, 1, 60_000),
    rewards: { impression: 0, click: 1, conversion: 3, ...(rewards as Partial<Record<FeedbackType, number>>) },
    staticShares: config.staticShares,
    overfetch,
  };
}

export class Scenarios {
  private readonly byName = new Map<string, Scenario>();

  constructor(configs: readonly ScenarioConfig[]) {
    configs.forEach((c, i) => {
      const s = parseScenario(c, `scenarios[${i}]`);
      this.byName.set(s.name, s);
    });
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  get(name: unknown): Scenario {
    const s = typeof name === 'string' ? this.byName.get(name) : undefined;
    if (!s) {
      throw new UnknownScenarioError(
        `Expected one of ${this.names.map((n) => `'${n}'`).join(', ')} for scenario but received ${typeof name === 'string' ? `the string '${name}'` : String(name)}`,
      );
    }
    return s;
  }

  *[Symbol.iterator](): IterableIterator<Scenario> {
    yield* this.byName.values();
  }
}
