/**
 * Popularity per scenario and category: the fallback that needs no user features. Scores are
 * exponentially decayed sums of feedback (so yesterday's hits fade), kept with the growing-increment
 * trick: each event adds a weight that grows by 2^(1/halfLife), which equals decaying every old
 * score, without touching them.
 */
import { StateFileError } from '../errors';
import type { CandidateGenerator, FeedbackEvent, FeedbackType, GeneratedCandidate, GeneratorInput } from '../types';

export interface PopularityOptions {
  name?: string;
  /** Events after which a score has halved (default 20,000). */
  halfLifeEvents?: number;
  /** Weight of each feedback type (default impression 0.05, click 1, conversion 3). */
  weights?: Partial<Record<FeedbackType, number>>;
  /** Sorted lists are rebuilt at most this often (default 200 ms; 0 rebuilds on every change). */
  refreshMs?: number;
  /** Entries kept per list when persisting (default 2,000). */
  persistTop?: number;
}

const allCategories = '*';

interface Board {
  scores: Map<bigint, number>;
  sorted: GeneratedCandidate[];
  dirty: boolean;
  builtAt: number;
}

export class PopularityGenerator implements CandidateGenerator {
  readonly name: string;
  private readonly growth: number;
  private readonly weights: Record<FeedbackType, number>;
  private readonly refreshMs: number;
  private readonly persistTop: number;
  private increment = 1;
  private readonly boards = new Map<string, Board>();

  constructor(options: PopularityOptions = {}) {
    this.name = options.name ?? 'popularity';
    this.growth = 2 ** (1 / (options.halfLifeEvents ?? 20_000));
    this.weights = { impression: 0.05, click: 1, conversion: 3, ...options.weights };
    this.refreshMs = options.refreshMs ?? 200;
    this.persistTop = options.persistTop ?? 2000;
  }

  async generate(input: GeneratorInput): Promise<GeneratedCandidate[]> {
    const categories = input.features.categories ?? [];
    const lists = categories.slice(0, 3).map((c) => this.top(input.scenario, c));
    lists.push(this.top(input.scenario, allCategories));
    // The user's recent categories first, then the scenario-wide board.
    const out: GeneratedCandidate[] = [];
    const seen = new Set<bigint>();
    for (const list of lists) {
      for (const c of list) {
        if (out.length >= input.fetch) return out;
        if (seen.has(c.adId)) continue;
        seen.add(c.adId);
        out.push(c);
      }
    }
    return out;
  }

  observe(event: FeedbackEvent): void {
    const weight = this.weights[event.type];
    if (!weight) return;
    this.increment *= this.growth;
    const add = weight * this.increment;
    this.bump(event.scenario, allCategories, event.adId, add);
    if (event.category) this.bump(event.scenario, event.category, event.adId, add);
    if (this.increment > 1e200) this.rescale();
  }

  saveState(): unknown {
    const boards: Record<string, [string, number][]> = {};
    for (const [key, board] of this.boards) {
      const top = [...board.scores].sort((a, b) => b[1] - a[1]).slice(0, this.persistTop);
      boards[key] = top.map(([id, s]) => [id.toString(), s / this.increment]);
    }
    return { kind: 'popularity', boards };
  }

  restoreState(state: unknown): void {
    const s = state as { kind?: unknown; boards?: unknown };
    if (!s || s.kind !== 'popularity' || typeof s.boards !== 'object' || s.boards === null) {
      throw new StateFileError(`Expected popularity state for generator '${this.name}' but received ${JSON.stringify(state)?.slice(0, 80)}`);
    }
    this.boards.clear();
    this.increment = 1;
    for (const [key, entries] of Object.entries(s.boards as Record<string, [string, number][]>)) {
      const board = this.board(key);
      for (const [id, score] of entries) board.scores.set(BigInt(id), Number(score));
    }
  }

  private bump(scenario: string, category: string, adId: bigint, add: number): void {
    const board = this.board(`${scenario}\u0000${category}`);
    board.scores.set(adId, (board.scores.get(adId) ?? 0) + add);
    board.dirty = true;
  }

  private board(key: string): Board {
    let board = this.boards.get(key);
    if (!board) {
      board = { scores: new Map(), sorted: [], dirty: true, builtAt: -Infinity };
      this.boards.set(key, board);
    }
    return board;
  }

  private top(scenario: string, category: string): GeneratedCandidate[] {
    const board = this.boards.get(`${scenario}\u0000${category}`);
    if (!board) return [];
    const now = performance.now();
    if (board.dirty && now - board.builtAt >= this.refreshMs) {
      board.sorted = [...board.scores]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5000)
        .map(([adId, s]) => ({ adId, score: s / this.increment }));
      board.dirty = false;
      board.builtAt = now;
    }
    return board.sorted;
  }

  private rescale(): void {
    for (const board of this.boards.values()) {
      for (const [id, s] of board.scores) board.scores.set(id, s / this.increment);
    }
    this.increment = 1;
  }
}
