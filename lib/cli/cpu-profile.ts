/**
 * Where the load test's server spends its main thread: a V8 CPU profile (node:inspector, taken
 * in the server child over one step of load) summed by self time into categories. V8 samples the
 * main thread only; what the libuv workers spend (the native searches and scans) is the process's
 * CPU time minus the main thread's (mainThreadCpuMs), measured next to it.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileCategory {
  category: string;
  ms: number;
  /** The functions with the most self time in this category. */
  top: { name: string; ms: number }[];
}

const httpPackages = /node_modules\/(fastify|@fastify|find-my-way|light-my-request|avvio|pino|fast-json-stringify|secure-json-parse|fast-querystring|fast-uri|ajv|abstract-logging|toad-cache|rfdc|process-warning)\//;

// node's stream bindings without a script: the answer's bytes going to the socket.
const socketWrites = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'shutdown']);

/**
 * The category of a profile node, by its script. The addon's functions share one entry point, so
 * V8 may label all of their samples with the name of one of them (often `setLimits`).
 */
export function categoryOf(frame: { functionName: string; url: string }): string {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(program)') return 'V8 and node internals (program)';
  if (name === '(root)') return 'idle';
  if (url === '') return socketWrites.has(name) ? 'node core (http, net, streams)' : 'native calls (the addon, JSON, other builtins)';
  if (httpPackages.test(url)) return 'fastify and its HTTP/JSON helpers';
  if (url.includes('node_modules/')) return 'other dependencies (prom-client, ...)';
  if (url.startsWith('node:')) return 'node core (http, net, streams)';
  if (/\/lib\//.test(url)) return 'cangen JavaScript (lib/)';
  return 'other JavaScript';
}

/** A script's path from its package (node_modules/<package>/...) or from lib/. */
const shortUrl = (url: string) => url.replace(/^.*?node_modules\//, '').replace(/^file:\/\/.*\/lib\//, 'lib/');

/** Self time per category, most first, with each category's top functions. */
export function summarizeProfile(profile: CpuProfile, topPerCategory = 4): ProfileCategory[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i + 1] is the time from sample i to the next: the time sample i stands for.
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, deltas[i + 1] ?? 0));
  const categories = new Map<string, { us: number; functions: Map<string, number> }>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame ?? { functionName: '(unknown)', url: '' };
    const category = categoryOf(frame);
    const entry = categories.get(category) ?? { us: 0, functions: new Map<string, number>() };
    entry.us += us;
    const where = frame.url ? `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}` : frame.functionName;
    entry.functions.set(where, (entry.functions.get(where) ?? 0) + us);
    categories.set(category, entry);
  }
  return [...categories]
    .map(([category, { us, functions }]) => ({
      category,
      ms: us / 1000,
      top: [...functions].sort((a, b) => b[1] - a[1]).slice(0, topPerCategory).map(([name, fus]) => ({ name, ms: fus / 1000 })),
    }))
    .sort((a, b) => b.ms - a.ms);
}

/**
 * CPU time of this process's main thread in ms (Linux: /proc/self/task/<pid>/stat, in clock
 * ticks of 10 ms), or NaN where that cannot be read.
 */
export function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}
