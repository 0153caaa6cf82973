/**
 * The marketplace simulator through the real pipeline: learned quotas against static ones.
 * Prints the quotas per scenario, latency and outcomes (clicks, conversions, regret per 1,000
 * requests), and writes results/simulate-<date>.json and simulate-quotas.svg (ignored by git; with
 * `-- --record`, bench/results/, the figures the repository publishes).
 * Before the arms run, the simulated users browse and see ads (the logged events: engagement,
 * ad clicks and conversions, per scenario), and cangen's trainer fits the unified model to them:
 * one small HSTU with a head per label and scenario, served as the 'sequence' generator with the
 * request's scenario head (kept in results/simulate-model and reused while the log is the same;
 * without PyTorch it is left out, saying why; `-- --model browsing|engagement|click|conversion` picks another,
 * `-- --no-sequence` leaves it out).
 * `-- --compare-models`: the untrained generators, the browsing model, each per-label model and
 * the unified model, each in its own learned-quota arm; per scenario clicks, conversions and value
 * per 1,000 requests (results/simulate-unified-<date>.json).
 * Run with `npm run simulate` (about a minute on two cores the first time, then about 45 s).
 */
import { join } from 'node:path';
import { resultsDir } from '../bench/flags';
import { runSimulate, simulatorModel } from '../lib/cli/simulate';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const value = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const record = flag('--record');
runSimulate({
  requests: 6000, ads: 20_000, users: 2000, seed: 1, out: resultsDir(record), modelDir: join(resultsDir(false), 'simulate-model'),
  sequence: !flag('--no-sequence'), model: simulatorModel(value('--model')), compareModels: flag('--compare-models'),
}).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
