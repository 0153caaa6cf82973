/** The simulator's printed tables, and the JSON record with machine and date. */
import { cpus, hostname, totalmem } from 'node:os';
import { buildInfo } from '../system';
import type { ModelComparison } from './compare';
import type { GeneratorOutcome, SimulationReport } from './run';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(report: SimulationReport): string {
  const { static: s, learned: l } = report.arms;
  const change = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;
  const outcomes = table(
    ['per 1,000 requests', 'static', 'learned', 'change'],
    [
      ['clicks', s.clicksPer1000.toFixed(1), l.clicksPer1000.toFixed(1), change(s.clicksPer1000, l.clicksPer1000)],
      ['conversions', s.conversionsPer1000.toFixed(1), l.conversionsPer1000.toFixed(1), change(s.conversionsPer1000, l.conversionsPer1000)],
      ['expected value (click 1 + conv 3)', s.valuePer1000.toFixed(1), l.valuePer1000.toFixed(1), change(s.valuePer1000, l.valuePer1000)],
      ['oracle value (all eligible ads)', s.oracleValuePer1000.toFixed(1), l.oracleValuePer1000.toFixed(1), ''],
      ['regret (oracle - achieved)', s.regretPer1000.toFixed(1), l.regretPer1000.toFixed(1), change(s.regretPer1000, l.regretPer1000)],
      ['latency p50 / p99 (ms)', `${s.latencyP50Ms.toFixed(2)} / ${s.latencyP99Ms.toFixed(2)}`, `${l.latencyP50Ms.toFixed(2)} / ${l.latencyP99Ms.toFixed(2)}`, ''],
      ['generator timeouts', String(s.timeouts), String(l.timeouts), ''],
    ],
  );
  const quotaRows: string[][] = [];
  for (const scenario of Object.keys(l.finalShares)) {
    quotaRows.push([scenario, ...report.generators.map((g) => `${((s.finalShares[scenario]?.[g] ?? 0) * 100).toFixed(0)}% -> ${((l.finalShares[scenario]![g] ?? 0) * 100).toFixed(0)}%`)]);
  }
  const quotas = table(['share of k (static -> learned)', ...report.generators], quotaRows);
  const both = (g: string, f: (x: GeneratorOutcome) => string) => `${f(s.byGenerator[g]!)} / ${f(l.byGenerator[g]!)}`;
  const byGenerator = table(
    ['per generator (static / learned)', 'share of k', 'shown per 1,000 requests', 'clicks per 100 shown', 'conversions per 100 shown'],
    report.generators.map((g) => [
      g,
      both(g, (x) => `${(x.share * 100).toFixed(0)}%`),
      both(g, (x) => x.shownPer1000.toFixed(0)),
      both(g, (x) => x.clicksPer100Shown.toFixed(1)),
      both(g, (x) => x.conversionsPer100Shown.toFixed(1)),
    ]),
  );
  const o = report.options;
  return [
    `Marketplace: ${o.ads.toLocaleString('en-US')} ads (${(o.coldShare * 100).toFixed(0)}% cold start), ${o.users.toLocaleString('en-US')} users, ${o.requests.toLocaleString('en-US')} requests per arm, ${o.slots} ads shown per request, seed ${o.seed}`,
    sequenceLine(report),
    '',
    quotas,
    '',
    byGenerator,
    '',
    outcomes,
    '',
    `(${report.seconds.toFixed(1)} s)`,
  ].join('\n');
}

function sequenceLine({ sequence: q }: SimulationReport): string {
  const log = q.model === 'browsing'
    ? `${q.logEvents.toLocaleString('en-US')} clicks browsed before the arms ran`
    : `${q.logEvents.toLocaleString('en-US')} logged events (${Object.entries(q.labels).map(([label, n]) => `${n.toLocaleString('en-US')} ${label}`).join(', ')})`;
  switch (q.status) {
    case 'trained':
    case 'reused':
      return `sequence generator: ${q.model} HSTU ${q.status} on ${log} (${q.items?.toLocaleString('en-US')} ads known${q.heads ? `, ${q.heads.length} heads` : ''}, ${q.seconds!.toFixed(1)} s)`;
    case 'skipped':
      return `sequence generator: skipped (${q.reason})`;
    default:
      return `sequence generator: off (${log})`;
  }
}

/** Per scenario, each arm's clicks, conversions and value per 1,000 of the scenario's requests, and the value against the untrained arm. */
export function formatComparison(comparison: ModelComparison): string {
  const arms = Object.values(comparison.arms);
  const base = comparison.arms.untrained!;
  const scenarios = Object.keys(base.byScenario);
  const change = (a: number, b: number) => (a > 0 ? `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%` : '');
  const rows: string[][] = [];
  for (const scenario of [...scenarios, 'all']) {
    for (const arm of arms) {
      const s = scenario === 'all' ? arm : arm.byScenario[scenario]!;
      const b = scenario === 'all' ? base : base.byScenario[scenario]!;
      const sequence = arm.byGenerator.sequence;
      rows.push([
        `${scenario} ${arm.name}`,
        s.clicksPer1000.toFixed(1),
        s.conversionsPer1000.toFixed(1),
        s.valuePer1000.toFixed(1),
        change(b.valuePer1000, s.valuePer1000),
        sequence ? `${(sequence.share * 100).toFixed(0)}%` : '',
      ]);
    }
  }
  const o = comparison.options;
  const skipped = Object.values(comparison.models).filter((m) => m.status === 'skipped').map((m) => `${m.model} model skipped: ${m.reason}`);
  return [
    `Marketplace: ${o.ads.toLocaleString('en-US')} ads, ${o.users.toLocaleString('en-US')} users, ${o.requests.toLocaleString('en-US')} requests per arm (learned quotas), ${o.slots} ads shown per request, seed ${o.seed}`,
    ...skipped,
    '',
    table(['per 1,000 requests of the scenario', 'clicks', 'conversions', 'value (click 1 + conv 3)', 'value vs untrained', 'sequence share of k'], rows),
    '',
    `(${comparison.seconds.toFixed(1)} s)`,
  ].join('\n');
}

/** The machine and date a result was measured on. */
export function machine() {
  const info = buildInfo();
  return {
    date: new Date().toISOString(),
    host: hostname(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    scanSimd: info.scanSimd,
    sequenceSimd: info.sequenceSimd,
    cuda: info.cudaDevices > 0 ? info.cudaDevice : 'none',
  };
}
