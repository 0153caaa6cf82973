/**
 * The marketplace simulator through the real pipeline: learned quotas against static ones.
 * Prints the quotas per scenario, latency and outcomes (clicks, conversions, regret per 1,000
 * requests), and writes results/simulate-<date>.json and simulate-quotas.svg (ignored by git; with
 * `-- --record`, bench/results/, the figures the repository publishes).
 * Run with `npm run simulate` (about 15 s on two cores).
 */
import { resultsDir } from '../bench/flags';
import { runSimulate } from '../lib/cli/simulate';

const record = process.argv.includes('--record');
runSimulate({ requests: 6000, ads: 20_000, users: 2000, seed: 1, out: resultsDir(record) }).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
