/** Fixed shares per scenario: the baseline that learned allocation is measured against. */
import type { FeedbackEvent } from '../types';
import { apportion, type QuotaAllocator, type ServedReport } from './allocator';

export class StaticAllocator implements QuotaAllocator {
  readonly kind = 'static';
  private readonly shares: Record<string, Record<string, number>>;

  /** `shares[scenario][generator]` are relative weights; generators not named get equal shares. */
  constructor(shares: Record<string, Record<string, number>> = {}) {
    this.shares = shares;
  }

  allocate(scenario: string, k: number, generators: readonly string[]): Record<string, number> {
    const weights = this.shares[scenario];
    const quotas = apportion(generators.map((g) => weights?.[g] ?? (weights ? 0 : 1)), k);
    return Object.fromEntries(generators.map((g, i) => [g, quotas[i]!]));
  }

  recordServed(_scenario: string, _k: number, _reports: readonly ServedReport[], _budgetMs: number): void {}

  recordFeedback(_event: FeedbackEvent, _reward: number): void {}

  saveState(): unknown {
    return { kind: 'static', shares: this.shares };
  }

  restoreState(): void {}
}
