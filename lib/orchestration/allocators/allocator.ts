/** How a scenario's k slots are split between generators, and what an allocator learns from. */
import type { FeedbackEvent, GeneratorStatus } from '../types';

export interface ServedReport {
  generator: string;
  status: GeneratorStatus;
  /** Candidates of this generator in the answer (ranks 0..kept-1). */
  kept: number;
  ms: number;
}

export interface QuotaAllocator {
  readonly kind: string;
  /** Slots per generator for one request; the values sum to k. */
  allocate(scenario: string, k: number, generators: readonly string[]): Record<string, number>;
  /** What one request served, and how long each generator took against the budget. */
  recordServed(scenario: string, k: number, reports: readonly ServedReport[], budgetMs: number): void;
  /** The value (by the scenario's objective) of one feedback event. */
  recordFeedback(event: FeedbackEvent, reward: number): void;
  saveState(): unknown;
  restoreState(state: unknown): void;
}

/** Integer quotas proportional to `weights`, summing to k (largest remainder). */
export function apportion(weights: readonly number[], k: number): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return apportion(weights.map(() => 1), k);
  const exact = weights.map((w) => (w / total) * k);
  const out = exact.map(Math.floor);
  let left = k - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let j = 0; left > 0; j = (j + 1) % order.length, left--) out[order[j]![1]]!++;
  return out;
}
