/**
 * The marketplace simulator through the real pipeline: learned quotas against static ones.
 * Prints the quotas per scenario, latency and outcomes (clicks, conversions, regret per 1,000
 * requests), and writes results/simulate-<date>.json and simulate-quotas.svg (ignored by git; with
 * `-- --record`, bench/results/, the figures the repository publishes).
 * Before the arms run, the simulated users browse, and cangen's trainer fits a small HSTU to
 * their clicks: the 'sequence' generator (kept in results/simulate-model and reused while the log
 * is the same; without PyTorch it is left out, saying why; `-- --no-sequence` leaves it out).
 * Run with `npm run simulate` (about a minute on two cores the first time, then about 45 s).
 */
import { join } from 'node:path';
import { resultsDir } from '../bench/flags';
import { runSimulate } from '../lib/cli/simulate';

const record = process.argv.includes('--record');
const sequence = !process.argv.includes('--no-sequence');
runSimulate({ requests: 6000, ads: 20_000, users: 2000, seed: 1, out: resultsDir(record), sequence, modelDir: join(resultsDir(false), 'simulate-model') }).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
