/** A one-line progress bar on stderr (only on a terminal; silent in pipes and CI logs). */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = performance.now();
  let last = 0;
  return (done: number, total: number) => {
    if (!stream.isTTY) return;
    const now = performance.now();
    if (done < total && now - last < 100) return;
    last = now;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const seconds = ((now - started) / 1000).toFixed(1);
    stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${seconds}s${done >= total ? '\n' : ''}`);
  };
}
