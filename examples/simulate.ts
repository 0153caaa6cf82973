/**
 * The marketplace simulator through the real pipeline: learned quotas against static ones.
 * Prints the quotas per scenario, latency and outcomes (clicks, conversions, regret per 1,000
 * requests), and writes bench/results/simulate-<date>.json and simulate-quotas.svg.
 * Run with `npm run simulate` (about 15 s on two cores).
 */
import { runSimulate } from '../lib/cli/simulate';

runSimulate({ requests: 6000, ads: 20_000, users: 2000, seed: 1, out: 'bench/results' }).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
