/**
 * Debian's python3-faiss (FAISS 1.7.3, generic scalar build) driven from a long-lived
 * /usr/bin/python3 helper (python_faiss.py). Data goes through raw float32 temp files; the helper
 * times the searches itself so that the pipe and file transfers are not measured.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Dataset, Driver, MeasurePlan, Measurement } from './driver';

const python = '/usr/bin/python3';
const helper = join(__dirname, 'python_faiss.py');

interface Reply {
  error?: string;
  [key: string]: unknown;
}

export function pythonFaiss(threads: number): Driver {
  let child: ChildProcessWithoutNullStreams | undefined;
  let lines: Interface | undefined;
  const pending: Array<(line: string) => void> = [];
  let dir: string | undefined;
  let dim = 0;
  let exitReason: string | undefined;

  function start() {
    dir = mkdtempSync(join(tmpdir(), 'cangen-bench-'));
    child = spawn(python, [helper], {
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[python3-faiss] ${chunk.toString()}`));
    child.on('exit', (code, signal) => {
      exitReason = `python3 helper exited (code ${code}, signal ${signal})`;
      for (const resolve of pending.splice(0)) resolve(JSON.stringify({ error: exitReason }));
    });
    lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => pending.shift()?.(line));
  }

  async function request(cmd: Record<string, unknown>): Promise<Reply> {
    if (!child) start();
    if (exitReason) throw new Error(exitReason);
    const answer = new Promise<string>((resolve) => pending.push(resolve));
    child!.stdin.write(`${JSON.stringify(cmd)}\n`);
    const reply = JSON.parse(await answer) as Reply;
    if (reply.error) throw new Error(`python3-faiss: ${reply.error}`);
    return reply;
  }

  function writeRaw(name: string, values: Float32Array): string {
    const path = join(dir!, name);
    writeFileSync(path, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return path;
  }

  return {
    key: 'python-faiss',
    label: 'python3-faiss IndexFlatIP',
    note: 'Debian python3-faiss 1.7.3 (generic scalar build), OMP_NUM_THREADS set, timed inside Python',
    threads,
    async unavailable() {
      const probe = spawnSync(python, ['-c', 'import faiss, numpy; print(faiss.__version__)'], { encoding: 'utf8' });
      if (probe.error || probe.status !== 0) return `not installed (${python} cannot import faiss, numpy)`;
      return undefined;
    },
    async build(data: Dataset) {
      if (!child) start();
      dim = data.dim;
      const path = writeRaw('corpus.f32', data.vectors);
      try {
        await request({ op: 'build', path, n: data.n, dim: data.dim, threads });
      } finally {
        rmSync(path, { force: true });
      }
    },
    async search(queries, nq, k) {
      const m = await this.timeSearch!([queries], nq, k, { minReps: 0, maxReps: 0, budgetMs: 0, capMs: 0 });
      return m.firstIds;
    },
    async timeSearch(batches: Float32Array[], batch: number, k: number, plan: MeasurePlan): Promise<Measurement> {
      const all = new Float32Array(batches.length * batch * dim);
      batches.forEach((b, i) => all.set(b, i * batch * dim));
      const path = writeRaw('queries.f32', all);
      const idsPath = join(dir!, 'ids.i64');
      try {
        const reply = await request({ op: 'search', path, batch, count: batches.length, k, idsPath, ...plan });
        const bytes = readFileSync(idsPath);
        const firstIds = new BigInt64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        return {
          timesMs: reply.timesMs as number[],
          firstIds,
          capped: (reply.capped as string | null) ?? undefined,
        };
      } finally {
        rmSync(path, { force: true });
        rmSync(idsPath, { force: true });
      }
    },
    async free() {
      if (child && !exitReason) await request({ op: 'free' });
    },
    async close() {
      if (child && !exitReason) {
        await request({ op: 'exit' });
        child.stdin.end();
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      child = undefined;
      dir = undefined;
    },
  };
}

/** Version of Debian's python3-faiss, or undefined when it is not importable. */
export function pythonFaissVersion(): string | undefined {
  const probe = spawnSync(python, ['-c', 'import faiss; print(faiss.__version__)'], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}
