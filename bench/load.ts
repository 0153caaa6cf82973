/**
 * Load test of the cangen service: 1M ads (the simulator's marketplace) behind an IVF index,
 * retrieve at a fixed 1,000 requests/s on loopback for 20 s (bounded in time and count).
 * `npm run bench:load -- --ads 200000 --rate 500 --seconds 10 --index flat` to vary it.
 * Writes results/load-<date>.json (with --record: bench/results/, the figures the repository publishes).
 */
import { main } from '../lib/cli';
import { resultsDir } from './flags';

const args = process.argv.slice(2);
const record = args.includes('--record');
const rest = args.filter((a) => a !== '--record');
const out = rest.includes('--out') ? [] : ['--out', resultsDir(record)];
main(['bench', ...rest, ...out]).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
