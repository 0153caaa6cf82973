/** `cangen shard` as a child process for tests, and a bounded wait for a condition. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const cli = join(__dirname, '..', '..', 'lib', 'cli', 'index.ts');

/** Each started process's start line (it says whether the replica loaded a snapshot). */
export const startLines = new WeakMap<ChildProcess, string>();

/** Starts `cangen shard` and resolves once it printed its start line. */
export async function shardProcess(servers: string[], cluster: string, shard: number, replicaId: string, extra: string[] = []): Promise<ChildProcess> {
  const args = ['shard', '--nats', servers.join(','), '--cluster', cluster, '--shard', String(shard), '--replica-id', replicaId, ...extra];
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cangen shard ${replicaId} did not start within 20 s: ${out}`));
    }, 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`replica ${replicaId} started`)) {
        startLines.set(child, out.split('\n').find((line) => line.includes(`replica ${replicaId} started`))!);
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`cangen shard ${replicaId} exited with ${code}: ${out}`)));
  });
  return child;
}

export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
