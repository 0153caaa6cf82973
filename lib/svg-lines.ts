/**
 * A dependency-free SVG of line charts: panels side by side, linear axes from 0, one polyline per
 * series (dashed where asked), optional horizontal reference lines, one legend for all panels.
 * Used by the simulator's quota plot and the load test's sweep plot.
 */

export interface LineSeries {
  label: string;
  colour: string;
  dashed?: boolean;
  points: readonly (readonly [number, number])[];
}

export interface LinePanel {
  title: string;
  xLabel: string;
  yLabel?: string;
  /** Top of the y axis (default: the largest y, rounded up to a tick). */
  yMax?: number;
  /** Horizontal reference lines (a goal, a baseline), drawn dashed in grey. */
  references?: readonly { y: number; label?: string }[];
  series: readonly LineSeries[];
}

export interface LegendEntry {
  label: string;
  colour: string;
  dashed?: boolean;
}

export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

export const escapeXml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** About five round ticks from 0 to at least `max` (steps of 1, 2 or 5 x 10^k). */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step - 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const tickText = (v: number) => (Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3))));

export function lineChartSvg(panels: readonly LinePanel[], legend: readonly LegendEntry[], size = { width: 360, height: 220 }): string {
  const { width: panelW, height: panelH } = size;
  const margin = { left: 48, right: 16, top: 36, bottom: 40 };
  const legendW = 150;
  const perRow = Math.max(1, Math.floor((panels.length * (panelW + margin.left + margin.right) - margin.left) / legendW));
  const legendRows = Math.ceil(legend.length / perRow);
  const width = panels.length * (panelW + margin.left + margin.right);
  const height = panelH + margin.top + margin.bottom + 10 + 18 * legendRows;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  panels.forEach((panel, p) => {
    const ox = p * (panelW + margin.left + margin.right) + margin.left;
    const oy = margin.top;
    const xs = panel.series.flatMap((s) => s.points.map(([x]) => x));
    const ys = panel.series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
    const xTicks = niceTicks(Math.max(...xs, 1));
    const yTicks = niceTicks(panel.yMax ?? Math.max(...ys, ...(panel.references ?? []).map((r) => r.y), 1));
    const maxX = xTicks.at(-1)!;
    const maxY = panel.yMax ?? yTicks.at(-1)!;
    const px = (v: number) => ox + (v / maxX) * panelW;
    const py = (v: number) => oy + panelH - (Math.min(v, maxY) / maxY) * panelH;
    parts.push(`<text x="${ox + panelW / 2}" y="${oy - 14}" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`);
    parts.push(`<rect x="${ox}" y="${oy}" width="${panelW}" height="${panelH}" fill="none" stroke="#999"/>`);
    for (const tick of yTicks.filter((t) => t <= maxY)) {
      parts.push(`<line x1="${ox}" x2="${ox + panelW}" y1="${py(tick)}" y2="${py(tick)}" stroke="#eee"/>`);
      parts.push(`<text x="${ox - 6}" y="${py(tick) + 4}" text-anchor="end">${tickText(tick)}</text>`);
    }
    for (const tick of xTicks) parts.push(`<text x="${px(tick)}" y="${oy + panelH + 14}" text-anchor="middle">${tickText(tick)}</text>`);
    parts.push(`<text x="${ox + panelW / 2}" y="${oy + panelH + 30}" text-anchor="middle">${escapeXml(panel.xLabel)}</text>`);
    if (panel.yLabel) parts.push(`<text transform="translate(${ox - 36},${oy + panelH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`);
    for (const { y, label } of panel.references ?? []) {
      parts.push(`<line x1="${ox}" x2="${ox + panelW}" y1="${py(y)}" y2="${py(y)}" stroke="#555" stroke-dasharray="4 3"/>`);
      if (label) parts.push(`<text x="${ox + panelW - 4}" y="${py(y) - 4}" text-anchor="end" fill="#555">${escapeXml(label)}</text>`);
    }
    for (const s of panel.series) {
      const points = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      const dash = s.dashed ? ' stroke-dasharray="6 3"' : '';
      parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${dash} points="${points}"><title>${escapeXml(s.label)}</title></polyline>`);
    }
  });
  legend.forEach((entry, i) => {
    const lx = margin.left + (i % perRow) * legendW;
    const ly = panelH + margin.top + margin.bottom + 14 + 18 * Math.floor(i / perRow);
    const dash = entry.dashed ? ' stroke-dasharray="4 3"' : '';
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${entry.colour}" stroke-width="3"${dash}/>`);
    parts.push(`<text x="${lx + 26}" y="${ly}">${escapeXml(entry.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
