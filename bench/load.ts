/**
 * Load test of the cangen service: 1M ads (the simulator's marketplace) behind an IVF index,
 * retrieve at a fixed 1,000 requests/s on loopback for 20 s (bounded in time and count).
 * `npm run bench:load -- --ads 200000 --rate 500 --seconds 10 --index flat` to vary it.
 */
import { main } from '../lib/cli';

main(['bench', ...process.argv.slice(2)]).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
