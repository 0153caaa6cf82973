/** Command-line flags shared by the benchmark scripts. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where a benchmark writes its results: `results/` under the current directory (ignored by git,
 * so a first run never dirties the checkout), or, with `--record`, the tracked `bench/results/`
 * that the repository's published figures come from.
 */
export function resultsDir(record: boolean): string {
  return record ? join(__dirname, 'results') : resolve('results');
}

/** A count such as 100, 100k or 1M. */
export function parseCount(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m) throw new Error(`Expected a count such as 100k or 1M for ${flag} but received ${text}`);
  const scale = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6;
  const value = Math.round(Number(m[1]) * scale);
  if (value < 1) throw new Error(`Expected a positive count for ${flag} but received ${text}`);
  return value;
}

/**
 * Reads `--flag value`, `--flag=value` and the boolean `--quick` / `--help` / `--record` into a map; unknown
 * flags throw. `--help` prints the script's opening comment and exits.
 */
export function readFlags(argv: string[], known: readonly string[], script: string): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    if (!known.includes(flag)) throw new Error(`Unknown option ${flag}; expected one of ${known.join(', ')}`);
    if (flag === '--quick' || flag === '--help' || flag === '--record' || flag === '--memory-only') values.set(flag, 'true');
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`Expected a value after ${flag}`);
      values.set(flag, value);
    }
  }
  if (values.has('--help')) {
    console.log(readFileSync(script, 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, ''));
    process.exit(0);
  }
  return values;
}
