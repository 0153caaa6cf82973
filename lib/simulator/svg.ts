/** A hand-written SVG line chart of quota shares over time: one panel per scenario. */
import type { SimulationReport } from './run';

const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function quotasSvg(report: SimulationReport): string {
  const scenarios = Object.keys(report.quotasOverTime);
  const panelW = 360;
  const panelH = 220;
  const margin = { left: 48, right: 16, top: 36, bottom: 40 };
  const width = scenarios.length * (panelW + margin.left + margin.right);
  const height = panelH + margin.top + margin.bottom + 28;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  scenarios.forEach((scenario, p) => {
    const { x, shares } = report.quotasOverTime[scenario]!;
    const ox = p * (panelW + margin.left + margin.right) + margin.left;
    const oy = margin.top;
    const maxX = Math.max(...x, 1);
    const px = (v: number) => ox + (v / maxX) * panelW;
    const py = (v: number) => oy + panelH - v * panelH;
    parts.push(`<text x="${ox + panelW / 2}" y="${oy - 14}" text-anchor="middle" font-size="13" font-weight="bold">${escape(scenario)}: learned share of k</text>`);
    parts.push(`<rect x="${ox}" y="${oy}" width="${panelW}" height="${panelH}" fill="none" stroke="#999"/>`);
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<line x1="${ox}" x2="${ox + panelW}" y1="${py(tick)}" y2="${py(tick)}" stroke="#eee"/>`);
      parts.push(`<text x="${ox - 6}" y="${py(tick) + 4}" text-anchor="end">${tick.toFixed(2)}</text>`);
    }
    for (let i = 0; i <= 4; i++) {
      const v = Math.round((maxX * i) / 4);
      parts.push(`<text x="${px(v)}" y="${oy + panelH + 14}" text-anchor="middle">${v}</text>`);
    }
    parts.push(`<text x="${ox + panelW / 2}" y="${oy + panelH + 30}" text-anchor="middle">requests</text>`);
    // The static baseline: equal shares.
    const equal = 1 / Object.keys(shares).length;
    parts.push(`<line x1="${ox}" x2="${ox + panelW}" y1="${py(equal)}" y2="${py(equal)}" stroke="#555" stroke-dasharray="4 3"/>`);
    Object.entries(shares).forEach(([name, ys], g) => {
      const points = ys.map((y, i) => `${px(x[i]!).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${colours[g % colours.length]}" stroke-width="2" points="${points}"><title>${escape(name)}</title></polyline>`);
    });
  });
  const legendY = height - 10;
  const names = report.generators;
  names.forEach((name, g) => {
    const lx = margin.left + g * 130;
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${colours[g % colours.length]}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 26}" y="${legendY}">${escape(name)}</text>`);
  });
  parts.push(`<line x1="${margin.left + names.length * 130}" x2="${margin.left + names.length * 130 + 20}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="#555" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${margin.left + names.length * 130 + 26}" y="${legendY}">static (equal shares)</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
