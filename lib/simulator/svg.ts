/** A hand-written SVG line chart of quota shares over time: one panel per scenario. */
import { lineChartSvg, palette } from '../svg-lines';
import type { SimulationReport } from './run';

export function quotasSvg(report: SimulationReport): string {
  const generators = report.generators;
  const colourOf = (name: string) => palette[Math.max(0, generators.indexOf(name)) % palette.length]!;
  const panels = Object.entries(report.quotasOverTime).map(([scenario, { x, shares }]) => ({
    title: `${scenario}: learned share of k`,
    xLabel: 'requests',
    yMax: 1,
    // The static baseline: equal shares.
    references: [{ y: 1 / Object.keys(shares).length }],
    series: Object.entries(shares).map(([name, ys]) => ({ label: name, colour: colourOf(name), points: ys.map((y, i) => [x[i]!, y] as const) })),
  }));
  const legend = [...generators.map((name) => ({ label: name, colour: colourOf(name) })), { label: 'static (equal shares)', colour: '#555', dashed: true }];
  return lineChartSvg(panels, legend);
}
