/**
 * Runs the marketplace through the real pipeline twice, request for request: once with static
 * quotas and once with learned ones. Both arms share the indexes and see the same users, sessions
 * and features; each has its own budgets, popularity and allocator. For every request the oracle
 * (the truth's exact top over every eligible ad) says what was possible, which gives the regret.
 */
import { AdIndex } from '../ad-index';
import { CandidateEngine } from '../orchestration/engine';
import { HashedNgramEmbedder } from '../orchestration/embedders/hashed';
import { normal, seededRandom } from '../orchestration/random';
import type { ScenarioConfig } from '../orchestration/scenarios';
import { Marketplace, pClick, pConversion, scenarioTruth, type WorldOptions } from './world';

export interface SimulationOptions extends WorldOptions {
  /** Requests per arm (default 4,000). */
  requests?: number;
  /** Ads the downstream ranker shows per request (default 4). */
  slots?: number;
  /** Requests per point of the quotas-over-time series (default 200). */
  window?: number;
  /** Called every `window` requests. */
  onProgress?: (done: number, total: number) => void;
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
  latencyP50Ms: number;
  latencyP99Ms: number;
  timeouts: number;
  /** Mean share of k per generator over the last quarter of the run, per scenario. */
  finalShares: Record<string, Record<string, number>>;
}

export interface SimulationReport {
  options: Required<Omit<SimulationOptions, 'onProgress'>>;
  generators: string[];
  arms: { static: ArmResult; learned: ArmResult };
  /** The learned arm's shares per scenario over time: x = requests so far. */
  quotasOverTime: Record<string, { x: number[]; shares: Record<string, number[]> }>;
  seconds: number;
}

const generators = ['two-tower', 'scorer', 'content', 'popularity'];
const scenarioConfigs: ScenarioConfig[] = [
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
  };
  const world = new Marketplace(o);
  const d = world.dim;

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

  const arms = {
    static: new CandidateEngine({ dim: d, embedder, scenarios: scenarioConfigs, allocator: 'static', ledgerSize: 64 }),
    learned: new CandidateEngine({ dim: d, embedder, scenarios: scenarioConfigs, allocator: 'learned', allocatorOptions: { seed: o.seed, halfLifeRequests: 20_000 }, ledgerSize: 64 }),
  };
  const ads = Array.from({ length: world.nAds }, (_, i) => world.adUpsert(i));
  for (const engine of Object.values(arms)) {
    await engine.upsertAds(ads);
    await engine.setCampaignBudgets(Array.from(world.advertiserBudget, (budget, a) => ({ campaignId: `adv${a}`, budget })));
  }

  const tallies = Object.fromEntries(
    (['static', 'learned'] as const).map((name) => [name, { clicks: 0, conversions: 0, value: 0, oracle: 0, latencies: [] as number[], timeouts: 0, shares: new Map<string, number[][]>() }]),
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
      const result = await engine.retrieve({ userId: `u${user}`, scenario, features });
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
      const events: { requestId: string; adId: bigint; type: 'impression' | 'click' | 'conversion' }[] = [];
      const charges: { id: bigint; amount: number }[] = [];
      shown.forEach((s, i) => {
        tally.value += rewardOf(s.pc, s.pv);
        events.push({ requestId: result.requestId, adId: s.c.adId, type: 'impression' });
        if (outcomeDraws[2 * i]! < s.pc) {
          tally.clicks++;
          charges.push({ id: s.c.adId, amount: world.adBid[Number(s.c.adId) - 1]! });
          events.push({ requestId: result.requestId, adId: s.c.adId, type: 'click' });
          if (outcomeDraws[2 * i + 1]! < s.pv) {
            tally.conversions++;
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
      latencyP50Ms: percentile(sorted, 0.5),
      latencyP99Ms: percentile(sorted, 0.99),
      timeouts: tally.timeouts,
      finalShares,
    };
  };
  const report: SimulationReport = {
    options: o,
    generators,
    arms: { static: result('static'), learned: result('learned') },
    quotasOverTime,
    seconds: (performance.now() - started) / 1000,
  };
  await arms.static.close();
  await arms.learned.close();
  oracle.close();
  return report;
}
