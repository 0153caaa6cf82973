/**
 * A dependency-free SVG of recall@10 (x, linear) against QPS (y, log scale): one panel per
 * corpus and mode, one line per index through its Pareto frontier, every measured point a dot.
 */

export interface PlotPoint {
  recall: number;
  qps: number;
}

export interface PlotSeries {
  label: string;
  /** Peers are drawn dashed. */
  ours: boolean;
  points: PlotPoint[];
}

export interface PlotPanel {
  title: string;
  series: PlotSeries[];
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#ff7f0e', '#7f7f7f'];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Points no other point beats on both recall and QPS, by increasing recall. */
export function paretoFrontier(points: PlotPoint[]): PlotPoint[] {
  const sorted = [...points].sort((a, b) => b.recall - a.recall || b.qps - a.qps);
  const out: PlotPoint[] = [];
  let bestQps = -Infinity;
  for (const p of sorted) {
    if (p.qps > bestQps) {
      out.push(p);
      bestQps = p.qps;
    }
  }
  return out.reverse();
}

function niceLogTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

const tickLabel = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v));

export function renderSvg(title: string, subtitle: string, panels: PlotPanel[], columns = 2): string {
  const pw = 560;
  const ph = 400;
  const margin = { left: 70, right: 20, top: 40, bottom: 50 };
  const legendH = 24;
  const labels = [...new Set(panels.flatMap((p) => p.series.map((s) => s.label)))];
  const color = new Map(labels.map((l, i) => [l, palette[i % palette.length]!]));
  const ours = new Map(panels.flatMap((p) => p.series.map((s) => [s.label, s.ours] as const)));
  const rows = Math.ceil(panels.length / columns);
  const legendRows = Math.ceil(labels.length / 4);
  const width = columns * pw;
  const headH = 50 + legendRows * legendH;
  const height = headH + rows * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="bold">${escape(title)}</text>`);
  parts.push(`<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${escape(subtitle)}</text>`);
  labels.forEach((label, i) => {
    const x = 20 + (i % 4) * ((width - 40) / 4);
    const y = 50 + Math.floor(i / 4) * legendH + 12;
    const dash = ours.get(label) ? '' : ' stroke-dasharray="6 3"';
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 30}" y2="${y}" stroke="${color.get(label)}" stroke-width="2.5"${dash}/>`);
    parts.push(`<circle cx="${x + 15}" cy="${y}" r="3" fill="${color.get(label)}"/>`);
    parts.push(`<text x="${x + 36}" y="${y + 4}">${escape(label)}</text>`);
  });
  panels.forEach((panel, index) => {
    const ox = (index % columns) * pw;
    const oy = headH + Math.floor(index / columns) * ph;
    const all = panel.series.flatMap((s) => s.points).filter((p) => p.qps > 0 && Number.isFinite(p.qps));
    const plotW = pw - margin.left - margin.right;
    const plotH = ph - margin.top - margin.bottom;
    parts.push(`<g transform="translate(${ox},${oy})">`);
    parts.push(`<text x="${margin.left + plotW / 2}" y="${margin.top - 12}" text-anchor="middle" font-weight="bold">${escape(panel.title)}</text>`);
    if (all.length === 0) {
      parts.push(`<text x="${margin.left + plotW / 2}" y="${margin.top + plotH / 2}" text-anchor="middle" fill="#999">no data</text></g>`);
      return;
    }
    const minRecall = Math.max(0, Math.floor(Math.min(...all.map((p) => p.recall)) * 10) / 10);
    const xMin = Math.min(minRecall, 0.9);
    const xMax = 1;
    const yMin = 10 ** Math.floor(Math.log10(Math.min(...all.map((p) => p.qps))));
    const yMax = 10 ** Math.ceil(Math.log10(Math.max(...all.map((p) => p.qps))));
    const sx = (r: number) => margin.left + ((r - xMin) / (xMax - xMin)) * plotW;
    const sy = (q: number) => margin.top + plotH - ((Math.log10(q) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;
    parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
    for (let r = Math.ceil(xMin * 20) / 20; r <= xMax + 1e-9; r += 0.05) {
      const x = sx(r);
      parts.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${margin.top + plotH}" stroke="#eee"/>`);
      parts.push(`<text x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle">${r.toFixed(2)}</text>`);
    }
    for (const q of niceLogTicks(yMin, yMax)) {
      const y = sy(q);
      parts.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#eee"/>`);
      parts.push(`<text x="${margin.left - 6}" y="${y + 4}" text-anchor="end">${tickLabel(q)}</text>`);
    }
    // The 0.95 recall line of the speed goal and 0.9 of the memory goal.
    for (const r of [0.9, 0.95]) {
      if (r < xMin) continue;
      parts.push(`<line x1="${sx(r)}" y1="${margin.top}" x2="${sx(r)}" y2="${margin.top + plotH}" stroke="#999" stroke-dasharray="2 3"/>`);
    }
    parts.push(`<text x="${margin.left + plotW / 2}" y="${ph - 12}" text-anchor="middle">recall@10</text>`);
    parts.push(`<text transform="translate(16,${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">queries per second (log)</text>`);
    for (const s of panel.series) {
      const c = color.get(s.label)!;
      const pts = s.points.filter((p) => p.qps > 0 && p.recall >= xMin);
      const front = paretoFrontier(pts);
      if (front.length > 1) {
        const d = front.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.recall).toFixed(1)},${sy(p.qps).toFixed(1)}`).join(' ');
        parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.ours ? '' : ' stroke-dasharray="6 3"'}/>`);
      }
      for (const p of pts) {
        parts.push(`<circle cx="${sx(p.recall).toFixed(1)}" cy="${sy(p.qps).toFixed(1)}" r="3" fill="${c}"><title>${escape(s.label)}: recall ${p.recall.toFixed(3)}, ${p.qps.toFixed(0)} QPS</title></circle>`);
      }
    }
    parts.push('</g>');
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
