/**
 * Runs the marketplace through the real pipeline twice, request for request: once with static
 * quotas and once with learned ones. Both arms share the indexes and see the same users, sessions
 * and features; each has its own budgets, popularity and allocator. For every request the oracle
 * (the truth's exact top over every eligible ad) says what was possible, which gives the regret.
 * Before the arms run, every user browses (the world's log); a small HSTU trained on that log by
 * cangen's trainer joins the generators as 'sequence', fed with each user's recent clicks.
 */
import { AdIndex } from '../ad-index';
import { CandidateEngine } from '../orchestration/engine';
import { HashedNgramEmbedder } from '../orchestration/embedders/hashed';
import { normal, seededRandom } from '../orchestration/random';
import type { ScenarioConfig } from '../orchestration/scenarios';
import { SimulatorSequenceGenerator } from './sequence-generator';
import { browsingLog, sequenceModelForRun, type SequenceSummary } from './sequence-model';
import { Marketplace, pClick, pConversion, scenarioTruth, type WorldOptions } from './world';

export interface SimulationOptions extends WorldOptions {
  /** Requests per arm (default 4,000). */
  requests?: number;
  /** Ads the downstream ranker shows per request (default 4). */
  slots?: number;
  /** Requests per point of the quotas-over-time series (default 200). */
  window?: number;
  /** Pages every user browses before the arms run: the log the sequence model learns from (default 30). */
  browsePages?: number;
  /** Add the 'sequence' generator, trained on the browsing log (default true; skipped, with the reason, without PyTorch). */
  sequence?: boolean;
  /** Where the sequence model is trained and kept, reused while log and settings match (default: a temporary folder, removed after). */
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

export interface ArmResult {
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
}

export interface SimulationReport {
  options: Required<Omit<SimulationOptions, 'onProgress' | 'onStatus' | 'modelDir'>>;
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

export async function simulate(options: SimulationOptions = {}): Promise<SimulationReport> {
  const started = performance.now();
  const o = {
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
  };
  const world = new Marketplace(o);
  const d = world.dim;
  // The world's past, whether or not a model learns from it (so both choices see the same world).
  const browsed = browsingLog(world, o.browsePages, seededRandom(o.seed + 2));
  const { encoder, summary } = await sequenceModelForRun(world, browsed, o.sequence, o.seed, options);
  const generators = [...baseGenerators, ...(encoder ? ['sequence'] : [])];
  const scenarioConfigs = scenariosOf(generators);

  // Each arm has its own AdIndex corpora (behavioural embeddings of known ads, titles of cold
  // ones): eligibility, budgets included, is filtered inside their searches, and each arm spends
  // its own budgets. The oracle's truth is shared.
  const embedder = new HashedNgramEmbedder({ dim: 256 });
  const oracle = new AdIndex({ dim: d + 1, metric: 'ip', kind: 'flat' });
  const truthRows = new Float32Array(world.nAds * (d + 1));
  for (let i = 0; i < world.nAds; i++) {
    truthRows.set(world.adTrue.subarray(i * d, (i + 1) * d), i * (d + 1));
    truthRows[i * (d + 1) + d] = world.adQuality[i]!;
  }
  await oracle.upsert(BigInt64Array.from({ length: world.nAds }, (_, i) => BigInt(i + 1)), truthRows);

  const adIds = Array.from({ length: world.nAds }, (_, i) => BigInt(i + 1));
  const sequences = {
    static: encoder ? new SimulatorSequenceGenerator(encoder, adIds) : undefined,
    learned: encoder ? new SimulatorSequenceGenerator(encoder, adIds) : undefined,
  };
  const extra = (name: 'static' | 'learned') => (sequences[name] ? [sequences[name]!] : []);
  const arms = {
    static: new CandidateEngine({ dim: d, embedder, scenarios: scenarioConfigs, allocator: 'static', ledgerSize: 64, generators: extra('static') }),
    learned: new CandidateEngine({ dim: d, embedder, scenarios: scenarioConfigs, allocator: 'learned', allocatorOptions: { seed: o.seed, halfLifeRequests: 20_000 }, ledgerSize: 64, generators: extra('learned') }),
  };
  const ads = Array.from({ length: world.nAds }, (_, i) => world.adUpsert(i));
  for (const name of ['static', 'learned'] as const) {
    await arms[name].upsertAds(ads);
    await arms[name].setCampaignBudgets(Array.from(world.advertiserBudget, (budget, a) => ({ campaignId: `adv${a}`, budget })));
    await sequences[name]?.attach(arms[name]);
  }
  // Each arm's users' recent clicks (ad ids, oldest first): the browsing log, then what the arm showed them.
  const maxHistory = encoder?.maxLen ?? 0;
  const recentClicks = () => browsed.map((rows) => (encoder ? rows.slice(-maxHistory).map((r) => String(r + 1)) : []));
  const clickHistories = { static: recentClicks(), learned: recentClicks() };

  const tallies = Object.fromEntries(
    (['static', 'learned'] as const).map((name) => [name, {
      clicks: 0, conversions: 0, value: 0, oracle: 0, shown: 0, latencies: [] as number[], timeouts: 0, shares: new Map<string, number[][]>(),
      bySource: new Map(generators.map((g) => [g, { share: 0, shown: 0, clicks: 0, conversions: 0 }])),
    }]),
  );
  const quotasOverTime: SimulationReport['quotasOverTime'] = {};
  const windowShares = new Map<string, { n: number; sums: number[] }>();
  const random = seededRandom(o.seed + 1);
  const scenarioNames = Object.keys(scenarioTruth);
  const scenarioWeights = scenarioNames.map((s) => scenarioTruth[s]!.weight);

  for (let t = 0; t < o.requests; t++) {
    const user = Math.floor(world.nUsers * random() ** 2); // some users are far more active
    let x = random();
    let si = 0;
    while (x > scenarioWeights[si]! && si < scenarioNames.length - 1) x -= scenarioWeights[si++]!;
    const scenario = scenarioNames[si]!;
    world.step(user);
    const features = world.features(user, scenario, random);
    const truthQuery = world.truthQuery(user, scenario);
    const oracleQuery = new Float32Array(d + 1);
    oracleQuery.set(truthQuery);
    oracleQuery[d] = 1;
    const best = (await oracle.search(oracleQuery, 64)).row(0);
    const rankerNoise = Array.from({ length: 512 }, () => Math.exp(0.4 * normal(random)));
    const outcomeDraws = Array.from({ length: o.slots * 2 }, () => random());

    for (const name of ['static', 'learned'] as const) {
      const engine = arms[name];
      const tally = tallies[name]!;
      const history = clickHistories[name][user]!;
      const result = await engine.retrieve({ userId: `u${user}`, scenario, features: encoder ? { ...features, history: { items: history } } : features });
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
      const events: { requestId: string; adId: bigint; type: 'impression' | 'click' | 'conversion' }[] = [];
      const charges: { id: bigint; amount: number }[] = [];
      shown.forEach((s, i) => {
        tally.value += rewardOf(s.pc, s.pv);
        const source = tally.bySource.get(s.c.source)!;
        source.shown++;
        events.push({ requestId: result.requestId, adId: s.c.adId, type: 'impression' });
        if (outcomeDraws[2 * i]! < s.pc) {
          tally.clicks++;
          source.clicks++;
          if (encoder) {
            history.push(s.c.adId.toString());
            if (history.length > maxHistory) history.shift();
          }
          charges.push({ id: s.c.adId, amount: world.adBid[Number(s.c.adId) - 1]! });
          events.push({ requestId: result.requestId, adId: s.c.adId, type: 'click' });
          if (outcomeDraws[2 * i + 1]! < s.pv) {
            tally.conversions++;
            source.conversions++;
            events.push({ requestId: result.requestId, adId: s.c.adId, type: 'conversion' });
          }
        }
      });
      if (charges.length > 0) await engine.spend(charges);
      engine.feedback(events);
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
      const shares = generators.map((g) => (result.quotas[g] ?? 0) / result.k);
      generators.forEach((g, i) => (tally.bySource.get(g)!.share += shares[i]!));
      if (!tally.shares.has(scenario)) tally.shares.set(scenario, []);
      tally.shares.get(scenario)!.push(shares);
      if (name === 'learned') {
        const w = windowShares.get(scenario) ?? { n: 0, sums: generators.map(() => 0) };
        w.n++;
        shares.forEach((s, i) => (w.sums[i]! += s));
        windowShares.set(scenario, w);
      }
    }
    if ((t + 1) % o.window === 0 || t + 1 === o.requests) {
      for (const [scenario, w] of windowShares) {
        const series = (quotasOverTime[scenario] ??= { x: [], shares: Object.fromEntries(generators.map((g) => [g, []])) });
        series.x.push(t + 1);
        generators.forEach((g, i) => series.shares[g]!.push(w.n ? w.sums[i]! / w.n : NaN));
      }
      windowShares.clear();
      for (const generator of Object.values(sequences)) await generator?.refresh();
      options.onProgress?.(t + 1, o.requests);
    }
  }

  const per1000 = (v: number) => (v * 1000) / o.requests;
  const result = (name: 'static' | 'learned'): ArmResult => {
    const tally = tallies[name]!;
    const sorted = [...tally.latencies].sort((a, b) => a - b);
    const finalShares: Record<string, Record<string, number>> = {};
    for (const [scenario, rows] of tally.shares) {
      const tail = rows.slice(Math.floor(rows.length * 0.75));
      finalShares[scenario] = Object.fromEntries(generators.map((g, i) => [g, tail.reduce((s, r) => s + r[i]!, 0) / tail.length]));
    }
    return {
      allocator: name,
      requests: o.requests,
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
        share: s.share / o.requests,
        shownPer1000: per1000(s.shown),
        clicksPer100Shown: s.shown ? (100 * s.clicks) / s.shown : 0,
        conversionsPer100Shown: s.shown ? (100 * s.conversions) / s.shown : 0,
      }])),
    };
  };
  const report: SimulationReport = {
    options: o,
    generators,
    sequence: summary,
    arms: { static: result('static'), learned: result('learned') },
    quotasOverTime,
    seconds: (performance.now() - started) / 1000,
  };
  await arms.static.close();
  await arms.learned.close();
  sequences.static?.close();
  sequences.learned?.close();
  encoder?.close();
  oracle.close();
  return report;
}
