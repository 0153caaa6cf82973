/**
 * Runs the marketplace through the real pipeline twice, request for request: once with static
 * quotas and once with learned ones. Both arms share the indexes and see the same users, sessions
 * and features; each has its own budgets, popularity and allocator. For every request the oracle
 * (the truth's exact top over every eligible ad) says what was possible, which gives the regret.
 * Before the arms run, every user browses and sees ads (the world's logged events, event-log.ts); a
 * small HSTU trained on that log by cangen's trainer joins the generators as 'sequence', fed with
 * each user's recent events: by default the unified model (engagement, click and conversion heads
 * per scenario). compareModels runs one learned arm per model instead (compare.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdIndex } from '../ad-index';
import { CandidateEngine } from '../orchestration/engine';
import { HashedNgramEmbedder } from '../orchestration/embedders/hashed';
import { normal, seededRandom } from '../orchestration/random';
import type { ScenarioConfig } from '../orchestration/scenarios';
import { actionName, drawScenario, engagementHistories, eventLog, historiesOf, labelCounts, type LoggedEvent } from './event-log';
import { closeServedModel, type ServedModel } from './event-models';
import { modelForRun, type RunModelName, type SequenceSummary } from './run-models';
import { SimulatorSequenceGenerator } from './sequence-generator';
import { Marketplace, pClick, pConversion, scenarioTruth, type WorldOptions } from './world';

export interface SimulationOptions extends WorldOptions {
  /** Requests per arm (default 4,000). */
  requests?: number;
  /** Ads the downstream ranker shows per request (default 4). */
  slots?: number;
  /** Requests per point of the quotas-over-time series (default 200). */
  window?: number;
  /** Turns every user takes before the arms run (a browsed page and an ad page each): the log the models learn from (default 30). */
  browsePages?: number;
  /** Add the 'sequence' generator, trained on the logged events (default true; skipped, with the reason, without PyTorch). */
  sequence?: boolean;
  /**
   * The sequence generator's model: 'unified' (default; engagement, click and conversion heads per
   * scenario),
   * 'browsing' (organic browsing clicks only), or a per-label model ('engagement', 'click', 'conversion').
   */
  sequenceModel?: RunModelName;
  /** Where the models are trained and kept (one folder each), reused while log and settings match (default: a temporary folder, removed after). */
  modelDir?: string;
  /** Called every `window` requests. */
  onProgress?: (done: number, total: number) => void;
  /** Status lines: the sequence model's training, or why there is none. */
  onStatus?: (line: string) => void;
}

/** What one generator's candidates did in an arm. */
export interface GeneratorOutcome {
  /** Mean share of k over all requests. */
  share: number;
  /** Its candidates among the ads shown, per 1,000 requests. */
  shownPer1000: number;
  /** Clicks and conversions on its shown candidates, per 100 shown. */
  clicksPer100Shown: number;
  conversionsPer100Shown: number;
}

/** One scenario's outcomes in an arm, per 1,000 of that scenario's requests. */
export interface ScenarioOutcome {
  requests: number;
  clicksPer1000: number;
  conversionsPer1000: number;
  /** Expected reward (click 1 + conversion 3) of what was shown. */
  valuePer1000: number;
}

export interface ArmResult {
  name: string;
  allocator: 'static' | 'learned';
  requests: number;
  clicksPer1000: number;
  conversionsPer1000: number;
  /** Expected reward (click 1 + conversion 3) of what was shown, per 1,000 requests. */
  valuePer1000: number;
  /** Expected reward of the oracle's choice from all eligible ads, per 1,000 requests. */
  oracleValuePer1000: number;
  /** oracle - achieved, per 1,000 requests. */
  regretPer1000: number;
  /** Ads shown per 1,000 requests: slots x 1,000, less where a request had fewer candidates (timeouts). */
  shownPer1000: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  timeouts: number;
  /** Mean share of k per generator over the last quarter of the run, per scenario. */
  finalShares: Record<string, Record<string, number>>;
  /** Per generator, over the whole run. */
  byGenerator: Record<string, GeneratorOutcome>;
  /** Per scenario, per 1,000 of its requests. */
  byScenario: Record<string, ScenarioOutcome>;
}

export type ResolvedOptions = Required<Omit<SimulationOptions, 'onProgress' | 'onStatus' | 'modelDir'>>;

export interface SimulationReport {
  options: ResolvedOptions;
  generators: string[];
  sequence: SequenceSummary;
  arms: { static: ArmResult; learned: ArmResult };
  /** The learned arm's shares per scenario over time: x = requests so far. */
  quotasOverTime: Record<string, { x: number[]; shares: Record<string, number[]> }>;
  seconds: number;
}

const baseGenerators = ['two-tower', 'scorer', 'content', 'popularity'];
const scenariosOf = (generators: string[]): ScenarioConfig[] => [
  { name: 'home', generators, k: 40, deadlineMs: 50 },
  { name: 'search', generators, k: 40, deadlineMs: 30 },
  { name: 'related', generators, k: 20, deadlineMs: 30 },
];
const rewardOf = (click: number, conversion: number) => click * (1 + 3 * conversion);

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

export function resolveOptions(options: SimulationOptions): ResolvedOptions {
  return {
    seed: options.seed ?? 1,
    ads: options.ads ?? 20_000,
    users: options.users ?? 2_000,
    dim: options.dim ?? 32,
    coldShare: options.coldShare ?? 0.1,
    advertisers: options.advertisers ?? 200,
    requests: options.requests ?? 4_000,
    slots: options.slots ?? 4,
    window: options.window ?? 200,
    browsePages: options.browsePages ?? 30,
    sequence: options.sequence ?? true,
    sequenceModel: options.sequenceModel ?? 'unified',
  };
}

/** The world and its past (the same whether or not a model learns from it, so every choice sees the same world). */
export function worldWithLog(o: ResolvedOptions): { world: Marketplace; events: LoggedEvent[] } {
  const world = new Marketplace(o);
  return { world, events: eventLog(world, o.browsePages, seededRandom(o.seed + 2)) };
}

/** Runs `body` with a folder for the models: options.modelDir, or a temporary one removed after. */
export async function withModelDir<T>(modelDir: string | undefined, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = modelDir ?? (await mkdtemp(join(tmpdir(), 'cangen-simulate-model-')));
  try {
    return await body(dir);
  } finally {
    if (!modelDir) await rm(dir, { recursive: true, force: true });
  }
}

export async function simulate(options: SimulationOptions = {}): Promise<SimulationReport> {
  const started = performance.now();
  const o = resolveOptions(options);
  const { world, events } = worldWithLog(o);
  const { model, summary } = await withModelDir(options.modelDir, (dir) => sequenceModelOf(world, events, o, dir, options.onStatus));
  try {
    const run = await runArms(world, events, o, [
      { name: 'static', allocator: 'static', model },
      { name: 'learned', allocator: 'learned', model },
    ], { trackQuotas: 'learned', onProgress: options.onProgress });
    return {
      options: o,
      generators: run.generators.learned!,
      sequence: summary,
      arms: { static: run.results.static!, learned: run.results.learned! },
      quotasOverTime: run.quotasOverTime,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    closeServedModel(model);
  }
}

/** The run's sequence model, or why there is none. */
async function sequenceModelOf(world: Marketplace, events: LoggedEvent[], o: ResolvedOptions, dir: string, onStatus?: (line: string) => void) {
  if (!o.sequence) {
    return { summary: { model: o.sequenceModel, status: 'off', logEvents: events.length, labels: labelCounts(events) } satisfies SequenceSummary };
  }
  return modelForRun(world, events, o.sequenceModel, { dir, seed: o.seed, onStatus });
}

/** One engine of a run: its allocator and, optionally, a served sequence model. */
export interface ArmSpec {
  name: string;
  allocator: 'static' | 'learned';
  model?: ServedModel;
}

interface ArmState {
  spec: ArmSpec;
  engine: CandidateEngine;
  sequence?: SimulatorSequenceGenerator;
  generators: string[];
  /** Each user's recent events (ad ids, action names), oldest first: the log, then what the arm showed them. */
  histories: { items: string[]; actions: string[] }[];
  maxHistory: number;
  tally: {
    clicks: number; conversions: number; value: number; oracle: number; shown: number; latencies: number[]; timeouts: number;
    shares: Map<string, number[][]>;
    bySource: Map<string, { share: number; shown: number; clicks: number; conversions: number }>;
    byScenario: Map<string, { requests: number; clicks: number; conversions: number; value: number }>;
  };
}

/** The histories an arm's model starts from: every logged event with its `label@scenario` action, or the browsing clicks alone. */
function startingHistories(events: readonly LoggedEvent[], users: number, model: ServedModel | undefined) {
  if (!model) return Array.from({ length: users }, () => ({ items: [] as string[], actions: [] as string[] }));
  const maxLen = model.encoder.maxLen;
  if (model.labelled) return historiesOf(events, users, true).map((h) => ({ items: h.items.slice(-maxLen), actions: h.actions.slice(-maxLen) }));
  return engagementHistories(events, users).map((rows) => ({ items: rows.slice(-maxLen).map((r) => String(r + 1)), actions: [] as string[] }));
}

/**
 * Every arm sees the same requests (user, scenario, features, ranker noise, outcome draws); each
 * has its own engine (indexes, budgets, popularity, allocator) and its users' own histories.
 */
export async function runArms(world: Marketplace, events: readonly LoggedEvent[], o: ResolvedOptions, specs: ArmSpec[], run: { trackQuotas?: string; onProgress?: (done: number, total: number) => void } = {}) {
  const d = world.dim;
  // The oracle's truth (true embedding and quality of every ad), shared by the arms.
  const oracle = new AdIndex({ dim: d + 1, metric: 'ip', kind: 'flat' });
  const truthRows = new Float32Array(world.nAds * (d + 1));
  for (let i = 0; i < world.nAds; i++) {
    truthRows.set(world.adTrue.subarray(i * d, (i + 1) * d), i * (d + 1));
    truthRows[i * (d + 1) + d] = world.adQuality[i]!;
  }
  await oracle.upsert(BigInt64Array.from({ length: world.nAds }, (_, i) => BigInt(i + 1)), truthRows);

  // Each arm has its own AdIndex corpora (behavioural embeddings of known ads, titles of cold
  // ones): eligibility, budgets included, is filtered inside their searches, and each arm spends
  // its own budgets.
  const embedder = new HashedNgramEmbedder({ dim: 256 });
  const adIds = Array.from({ length: world.nAds }, (_, i) => BigInt(i + 1));
  const ads = Array.from({ length: world.nAds }, (_, i) => world.adUpsert(i));
  const arms: ArmState[] = [];
  for (const spec of specs) {
    const sequence = spec.model ? new SimulatorSequenceGenerator(spec.model.encoder, adIds, spec.model.heads) : undefined;
    const generators = [...baseGenerators, ...(sequence ? ['sequence'] : [])];
    const engine = new CandidateEngine({
      dim: d, embedder, scenarios: scenariosOf(generators), allocator: spec.allocator, ledgerSize: 64, generators: sequence ? [sequence] : [],
      ...(spec.allocator === 'learned' ? { allocatorOptions: { seed: o.seed, halfLifeRequests: 20_000 } } : {}),
    });
    await engine.upsertAds(ads);
    await engine.setCampaignBudgets(Array.from(world.advertiserBudget, (budget, a) => ({ campaignId: `adv${a}`, budget })));
    await sequence?.attach(engine);
    arms.push({
      spec, engine, sequence, generators,
      histories: startingHistories(events, world.nUsers, spec.model),
      maxHistory: spec.model?.encoder.maxLen ?? 0,
      tally: {
        clicks: 0, conversions: 0, value: 0, oracle: 0, shown: 0, latencies: [], timeouts: 0, shares: new Map(),
        bySource: new Map(generators.map((g) => [g, { share: 0, shown: 0, clicks: 0, conversions: 0 }])),
        byScenario: new Map(),
      },
    });
  }

  const quotasOverTime: SimulationReport['quotasOverTime'] = {};
  const windowShares = new Map<string, { n: number; sums: number[] }>();
  const random = seededRandom(o.seed + 1);
  const scenarioNames = Object.keys(scenarioTruth);

  for (let t = 0; t < o.requests; t++) {
    const user = Math.floor(world.nUsers * random() ** 2); // some users are far more active
    const scenario = drawScenario(scenarioNames, random());
    world.step(user);
    const features = world.features(user, scenario, random);
    const truthQuery = world.truthQuery(user, scenario);
    const oracleQuery = new Float32Array(d + 1);
    oracleQuery.set(truthQuery);
    oracleQuery[d] = 1;
    const best = (await oracle.search(oracleQuery, 64)).row(0);
    const rankerNoise = Array.from({ length: 512 }, () => Math.exp(0.4 * normal(random)));
    const outcomeDraws = Array.from({ length: o.slots * 2 }, () => random());

    for (const arm of arms) {
      const { engine, tally } = arm;
      const history = arm.histories[user]!;
      const labelled = arm.spec.model?.labelled ?? false;
      const remember = (adId: bigint, label: 'click' | 'conversion') => {
        history.items.push(adId.toString());
        if (labelled) history.actions.push(actionName(label, scenario, true));
        if (history.items.length > arm.maxHistory) {
          history.items.shift();
          if (labelled) history.actions.shift();
        }
      };
      const requestFeatures = arm.spec.model
        ? { ...features, history: labelled ? { items: history.items, actions: history.actions } : { items: history.items } }
        : features;
      const result = await engine.retrieve({ userId: `u${user}`, scenario, features: requestFeatures });
      tally.latencies.push(result.ms);
      tally.timeouts += result.generators.filter((g) => g.status === 'timeout').length;
      // Downstream: the ranker estimates each candidate's value (with noise) and shows the best.
      const scored = result.candidates.map((c, i) => {
        const row = Number(c.adId) - 1;
        const rel = world.relevance(truthQuery, row);
        const pc = pClick(rel);
        const pv = pConversion(rel, world.adConversion[row]!);
        return { c, pc, pv, estimate: rewardOf(pc, pv) * rankerNoise[i % rankerNoise.length]! };
      });
      scored.sort((a, b) => b.estimate - a.estimate);
      const shown = scored.slice(0, o.slots);
      tally.shown += shown.length;
      const inScenario = tally.byScenario.get(scenario) ?? { requests: 0, clicks: 0, conversions: 0, value: 0 };
      tally.byScenario.set(scenario, inScenario);
      inScenario.requests++;
      const feedback: { requestId: string; adId: bigint; type: 'impression' | 'click' | 'conversion' }[] = [];
      const charges: { id: bigint; amount: number }[] = [];
      shown.forEach((s, i) => {
        tally.value += rewardOf(s.pc, s.pv);
        inScenario.value += rewardOf(s.pc, s.pv);
        const source = tally.bySource.get(s.c.source)!;
        source.shown++;
        feedback.push({ requestId: result.requestId, adId: s.c.adId, type: 'impression' });
        if (outcomeDraws[2 * i]! < s.pc) {
          tally.clicks++;
          inScenario.clicks++;
          source.clicks++;
          charges.push({ id: s.c.adId, amount: world.adBid[Number(s.c.adId) - 1]! });
          feedback.push({ requestId: result.requestId, adId: s.c.adId, type: 'click' });
          const converted = outcomeDraws[2 * i + 1]! < s.pv;
          if (converted) {
            tally.conversions++;
            inScenario.conversions++;
            source.conversions++;
            feedback.push({ requestId: result.requestId, adId: s.c.adId, type: 'conversion' });
          }
          if (arm.spec.model) remember(s.c.adId, converted ? 'conversion' : 'click'); // one event per clicked ad, as in the log
        }
      });
      if (charges.length > 0) await engine.spend(charges);
      engine.feedback(feedback);
      // The oracle: the best `slots` eligible ads by true expected value.
      const possible: number[] = [];
      for (let i = 0; i < best.ids.length; i++) {
        const id = best.ids[i]!;
        if (!engine.store.eligible(id, features.geo, undefined)) continue;
        const row = Number(id) - 1;
        possible.push(rewardOf(pClick(best.scores[i]!), pConversion(best.scores[i]!, world.adConversion[row]!)));
      }
      possible.sort((a, b) => b - a);
      tally.oracle += possible.slice(0, o.slots).reduce((a, b) => a + b, 0);
      const shares = arm.generators.map((g) => (result.quotas[g] ?? 0) / result.k);
      arm.generators.forEach((g, i) => (tally.bySource.get(g)!.share += shares[i]!));
      if (!tally.shares.has(scenario)) tally.shares.set(scenario, []);
      tally.shares.get(scenario)!.push(shares);
      if (arm.spec.name === run.trackQuotas) {
        const w = windowShares.get(scenario) ?? { n: 0, sums: arm.generators.map(() => 0) };
        w.n++;
        shares.forEach((s, i) => (w.sums[i]! += s));
        windowShares.set(scenario, w);
      }
    }
    if ((t + 1) % o.window === 0 || t + 1 === o.requests) {
      const tracked = arms.find((a) => a.spec.name === run.trackQuotas);
      for (const [scenario, w] of windowShares) {
        const series = (quotasOverTime[scenario] ??= { x: [], shares: Object.fromEntries(tracked!.generators.map((g) => [g, []])) });
        series.x.push(t + 1);
        tracked!.generators.forEach((g, i) => series.shares[g]!.push(w.n ? w.sums[i]! / w.n : NaN));
      }
      windowShares.clear();
      for (const arm of arms) await arm.sequence?.refresh();
      run.onProgress?.(t + 1, o.requests);
    }
  }

  const results = Object.fromEntries(arms.map((arm) => [arm.spec.name, armResult(arm, o.requests)]));
  const generators = Object.fromEntries(arms.map((arm) => [arm.spec.name, arm.generators]));
  for (const arm of arms) {
    await arm.engine.close();
    arm.sequence?.close();
  }
  oracle.close();
  return { results, generators, quotasOverTime };
}

function armResult({ spec, tally, generators }: ArmState, requests: number): ArmResult {
  const per1000 = (v: number, n = requests) => (n ? (v * 1000) / n : 0);
  const sorted = [...tally.latencies].sort((a, b) => a - b);
  const finalShares: Record<string, Record<string, number>> = {};
  for (const [scenario, rows] of tally.shares) {
    const tail = rows.slice(Math.floor(rows.length * 0.75));
    finalShares[scenario] = Object.fromEntries(generators.map((g, i) => [g, tail.reduce((s, r) => s + r[i]!, 0) / tail.length]));
  }
  return {
    name: spec.name,
    allocator: spec.allocator,
    requests,
    clicksPer1000: per1000(tally.clicks),
    conversionsPer1000: per1000(tally.conversions),
    valuePer1000: per1000(tally.value),
    oracleValuePer1000: per1000(tally.oracle),
    regretPer1000: per1000(tally.oracle - tally.value),
    shownPer1000: per1000(tally.shown),
    latencyP50Ms: percentile(sorted, 0.5),
    latencyP99Ms: percentile(sorted, 0.99),
    timeouts: tally.timeouts,
    finalShares,
    byGenerator: Object.fromEntries([...tally.bySource].map(([g, s]) => [g, {
      share: s.share / requests,
      shownPer1000: per1000(s.shown),
      clicksPer100Shown: s.shown ? (100 * s.clicks) / s.shown : 0,
      conversionsPer100Shown: s.shown ? (100 * s.conversions) / s.shown : 0,
    }])),
    byScenario: Object.fromEntries([...tally.byScenario].sort(([a], [b]) => a.localeCompare(b)).map(([scenario, s]) => [scenario, {
      requests: s.requests,
      clicksPer1000: per1000(s.clicks, s.requests),
      conversionsPer1000: per1000(s.conversions, s.requests),
      valuePer1000: per1000(s.value, s.requests),
    }])),
  };
}
