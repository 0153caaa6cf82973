/** A plain-text table for benchmark output: the first `labels` columns left-aligned, the rest right-aligned. */
export function printTable(title: string, header: string[], rows: (string | number)[][], labels = 1): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  console.log(`\n${title}\n`);
  cells.forEach((r, i) => {
    console.log(r.map((cell, c) => (c < labels ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  });
}
