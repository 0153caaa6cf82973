/** `cangen shard` and `cangen router` as child processes for tests, and a bounded wait for a condition. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const cli = join(__dirname, '..', '..', 'lib', 'cli', 'index.ts');

/** Each started process's start line (it says whether the replica loaded a snapshot). */
export const startLines = new WeakMap<ChildProcess, string>();

/**
 * Starts `cangen <args>` and resolves with the child and the match once its stdout matches `ready`
 * (40 s at most: longer than a replica's own 30 s of retries through a JetStream failover, so that
 * its error, not this bound, is what a failure shows).
 */
async function cangenChild(args: string[], ready: RegExp, what: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start within 40 s: ${out}`));
    }, 40_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = ready.exec(out);
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${out}`)));
  });
  return { child, match };
}

/** Starts `cangen shard` and resolves once it printed its start line. */
export async function shardProcess(servers: string[], cluster: string, shard: number, replicaId: string, extra: string[] = []): Promise<ChildProcess> {
  const args = ['shard', '--nats', servers.join(','), '--cluster', cluster, '--shard', String(shard), '--replica-id', replicaId, ...extra];
  const { child, match } = await cangenChild(args, new RegExp(`[^\\n]*replica ${replicaId} started[^\\n]*`), `cangen shard ${replicaId}`);
  startLines.set(child, match[0]);
  return child;
}

/** Starts `cangen router` on a free port (--port 0) and resolves with its base URL once it listens. */
export async function routerProcess(servers: string[], cluster: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const args = ['router', '--nats', servers.join(','), '--cluster', cluster, '--port', '0', ...extra];
  const { child, match } = await cangenChild(args, /listening on (http:\/\/\S+)/, `cangen router for ${cluster}`, env);
  return { child, url: match[1]! };
}

export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
