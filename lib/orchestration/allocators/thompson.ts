/**
 * Learned quotas: Thompson sampling on each generator's marginal value per slot.
 *
 * A request's k slots are cut into `units` equal blocks. For every (scenario, generator, block b)
 * the allocator keeps the reward earned by candidates that generator placed at ranks inside block
 * b, and how many such slots it served: a Gamma-Poisson posterior of the reward per slot. For a
 * request it samples every posterior, makes each generator's curve non-increasing in b (a
 * generator's 2nd block is never worth more than its 1st: it ranks its own best first), and hands
 * the blocks out greedily to the highest next-block value, which is optimal for concave values.
 *
 * - Exploration: each generator keeps at least `minShare` of the slots, and unexplored deep blocks
 *   are sampled from the prior (capped by the block before), so they get tried.
 * - Latency: a generator's sampled values are scaled by (1 - its recent timeout rate): slots given
 *   to a generator that misses the deadline are refilled by others and earn it nothing.
 * - Drift: statistics decay with a half-life in requests, so the allocation follows the market.
 */
import { StateFileError } from '../errors';
import { gamma, seededRandom, type Random } from '../random';
import type { FeedbackEvent } from '../types';
import { apportion, type QuotaAllocator, type ServedReport } from './allocator';

export interface ThompsonOptions {
  /** Blocks per request (default 20: 5% of k each). */
  units?: number;
  /** Smallest share each generator keeps, for exploration (default 0.05). */
  minShare?: number;
  /** Requests after which old evidence counts half (default 5,000; Infinity never forgets). */
  halfLifeRequests?: number;
  /** Weight of the prior in slots (default 20). */
  priorSlots?: number;
  /** Seed of the sampler (default: random). */
  seed?: number;
}

interface ScenarioStats {
  generators: string[];
  reward: Float64Array;
  slots: Float64Array;
  latencyMs: Float64Array;
  timeoutRate: Float64Array;
  requests: number;
}

const ewma = 0.05;

export class ThompsonAllocator implements QuotaAllocator {
  readonly kind = 'thompson';
  readonly units: number;
  readonly minShare: number;
  private readonly decay: number;
  private readonly priorSlots: number;
  private readonly random: Random;
  private readonly scenarios = new Map<string, ScenarioStats>();

  constructor(options: ThompsonOptions = {}) {
    this.units = options.units ?? 20;
    this.minShare = options.minShare ?? 0.05;
    const halfLife = options.halfLifeRequests ?? 5000;
    this.decay = Number.isFinite(halfLife) ? 2 ** (-1 / halfLife) : 1;
    this.priorSlots = options.priorSlots ?? 20;
    this.random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  allocate(scenario: string, k: number, generators: readonly string[]): Record<string, number> {
    const units = this.sampleUnits(scenario, generators);
    const quotas = apportion(units, k);
    return Object.fromEntries(generators.map((g, i) => [g, quotas[i]!]));
  }

  /** Units per generator for one request (sums to `units`). */
  sampleUnits(scenario: string, generators: readonly string[], sample = true): number[] {
    const st = this.stats(scenario, generators);
    const U = this.units;
    const n = generators.length;
    const rows = generators.map((g) => st.generators.indexOf(g));
    // Empirical-Bayes prior: the scenario's mean reward per slot, worth priorSlots slots.
    let totalReward = 0;
    let totalSlots = 0;
    for (let i = 0; i < st.reward.length; i++) {
      totalReward += st.reward[i]!;
      totalSlots += st.slots[i]!;
    }
    const meanRate = (totalReward + 0.1) / (totalSlots + 10);
    const alpha0 = this.priorSlots * meanRate;
    const beta0 = this.priorSlots;
    const values = rows.map((row) => {
      const curve = new Float64Array(U);
      let cap = Infinity;
      for (let b = 0; b < U; b++) {
        const a = alpha0 + st.reward[row * U + b]!;
        const r = beta0 + st.slots[row * U + b]!;
        const v = sample ? gamma(this.random, a, r) : a / r;
        cap = Math.min(cap, v);
        curve[b] = cap * (1 - st.timeoutRate[row]!);
      }
      return curve;
    });
    const floor = Math.min(Math.ceil(this.minShare * U), Math.floor(U / n));
    const units = generators.map(() => floor);
    for (let left = U - floor * n; left > 0; left--) {
      let best = 0;
      let bestValue = -1;
      for (let g = 0; g < n; g++) {
        const v = units[g]! < U ? values[g]![units[g]!]! : -1;
        if (v > bestValue) {
          bestValue = v;
          best = g;
        }
      }
      units[best]!++;
    }
    return units;
  }

  /** The allocation the posterior means give (no sampling): what the allocator believes now. */
  expectedShares(scenario: string, generators: readonly string[]): Record<string, number> {
    const units = this.sampleUnits(scenario, generators, false);
    return Object.fromEntries(generators.map((g, i) => [g, units[i]! / this.units]));
  }

  recordServed(scenario: string, k: number, reports: readonly ServedReport[], budgetMs: number): void {
    const st = this.stats(scenario, reports.map((r) => r.generator));
    const U = this.units;
    if (this.decay < 1) {
      for (let i = 0; i < st.reward.length; i++) {
        st.reward[i]! *= this.decay;
        st.slots[i]! *= this.decay;
      }
    }
    st.requests++;
    for (const report of reports) {
      if (report.status === 'skipped') continue;
      const row = st.generators.indexOf(report.generator);
      const timedOut = report.status === 'timeout' ? 1 : 0;
      st.timeoutRate[row] = st.timeoutRate[row]! * (1 - ewma) + timedOut * ewma;
      st.latencyMs[row] = st.latencyMs[row]! * (1 - ewma) + Math.min(report.ms, budgetMs * 4) * ewma;
      for (let b = 0; b < U; b++) {
        const lo = Math.ceil((b * k) / U);
        const hi = Math.ceil(((b + 1) * k) / U);
        const served = Math.min(report.kept, hi) - lo;
        if (served <= 0) break;
        st.slots[row * U + b]! += served;
      }
    }
  }

  recordFeedback(event: FeedbackEvent, reward: number): void {
    const st = this.scenarios.get(event.scenario);
    if (!st || reward === 0) return;
    const row = st.generators.indexOf(event.source);
    if (row < 0 || event.k < 1 || event.rank < 0) return;
    const b = Math.min(this.units - 1, Math.floor((event.rank * this.units) / event.k));
    st.reward[row * this.units + b]! += reward;
  }

  /** Recent latency and timeout rate per generator of a scenario. */
  health(scenario: string): Record<string, { latencyMs: number; timeoutRate: number }> {
    const st = this.scenarios.get(scenario);
    if (!st) return {};
    return Object.fromEntries(st.generators.map((g, i) => [g, { latencyMs: st.latencyMs[i]!, timeoutRate: st.timeoutRate[i]! }]));
  }

  saveState(): unknown {
    const scenarios: Record<string, unknown> = {};
    for (const [name, st] of this.scenarios) {
      scenarios[name] = {
        generators: st.generators,
        reward: Array.from(st.reward),
        slots: Array.from(st.slots),
        latencyMs: Array.from(st.latencyMs),
        timeoutRate: Array.from(st.timeoutRate),
        requests: st.requests,
      };
    }
    return { kind: this.kind, version: 1, units: this.units, scenarios };
  }

  restoreState(state: unknown): void {
    const s = state as { kind?: unknown; version?: unknown; units?: unknown; scenarios?: unknown };
    if (!s || s.kind !== this.kind || s.version !== 1 || typeof s.scenarios !== 'object' || s.scenarios === null) {
      throw new StateFileError(`Expected thompson allocator state (version 1) but received ${JSON.stringify(state)?.slice(0, 80)}`);
    }
    if (s.units !== this.units) {
      throw new StateFileError(`Expected allocator state with ${this.units} units but received ${String(s.units)}: start without the state or keep units`);
    }
    const restored = new Map<string, ScenarioStats>();
    for (const [name, raw] of Object.entries(s.scenarios as Record<string, Record<string, unknown>>)) {
      const generators = raw.generators;
      const n = Array.isArray(generators) ? generators.length : -1;
      const numbers = (key: string, length: number) => {
        const v = raw[key];
        if (!Array.isArray(v) || v.length !== length || v.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x < 0)) {
          throw new StateFileError(`Expected ${length} non-negative numbers for scenarios.${name}.${key} in allocator state but received ${JSON.stringify(v)?.slice(0, 60)}`);
        }
        return Float64Array.from(v as number[]);
      };
      if (n < 1 || !(generators as unknown[]).every((g) => typeof g === 'string')) {
        throw new StateFileError(`Expected generator names for scenarios.${name}.generators in allocator state but received ${JSON.stringify(generators)}`);
      }
      restored.set(name, {
        generators: generators as string[],
        reward: numbers('reward', n * this.units),
        slots: numbers('slots', n * this.units),
        latencyMs: numbers('latencyMs', n),
        timeoutRate: numbers('timeoutRate', n),
        requests: typeof raw.requests === 'number' ? raw.requests : 0,
      });
    }
    this.scenarios.clear();
    for (const [name, st] of restored) this.scenarios.set(name, st);
  }

  /** A scenario's statistics, with rows added for generators seen for the first time. */
  private stats(scenario: string, generators: readonly string[]): ScenarioStats {
    let st = this.scenarios.get(scenario);
    const missing = generators.filter((g) => !st?.generators.includes(g));
    if (st && missing.length === 0) return st;
    const names = [...(st?.generators ?? []), ...missing];
    const U = this.units;
    const grown: ScenarioStats = {
      generators: names,
      reward: new Float64Array(names.length * U),
      slots: new Float64Array(names.length * U),
      latencyMs: new Float64Array(names.length),
      timeoutRate: new Float64Array(names.length),
      requests: st?.requests ?? 0,
    };
    if (st) {
      grown.reward.set(st.reward);
      grown.slots.set(st.slots);
      grown.latencyMs.set(st.latencyMs);
      grown.timeoutRate.set(st.timeoutRate);
    }
    this.scenarios.set(scenario, grown);
    st = grown;
    return st;
  }
}
