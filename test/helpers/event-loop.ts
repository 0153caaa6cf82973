/** A timer every `intervalMs`: stop() says how often it ran and the most it ran late. */
export function watchTimer(intervalMs = 5): { stop(): { ticks: number; worst: number } } {
  let worst = 0;
  let ticks = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - intervalMs);
    last = now;
    ticks++;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { ticks, worst };
    },
  };
}
