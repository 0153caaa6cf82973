/**
 * Real nats-server processes with JetStream for tests: a single node, or a 3-node cluster on
 * loopback (free ports, each node's store in a temporary folder). kill() stops a node hard
 * (SIGKILL), start() brings it back on the same ports and store; stop() removes everything.
 * Every wait is bounded; a test process that dies leaves no server behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect } from 'nats';

/**
 * The nats-server executable: $NATS_SERVER, else the first on PATH, else Debian's /usr/sbin one
 * (the package installs it there, which is not on a normal user's PATH).
 */
function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  return dirs.map((d) => join(d, 'nats-server')).find((path) => existsSync(path)) ?? 'nats-server';
}

/** Why nats-server cannot run here, or undefined when it can. In CI (CI set) a missing server is an error, not a skip. */
export function natsServerMissing(): string | undefined {
  const probe = spawnSync(natsServerBinary(), ['--version'], { encoding: 'utf8' });
  if (!probe.error) return undefined;
  const reason = `nats-server is not installed (${probe.error.message}); .ci/run installs it (apt-get install nats-server)`;
  if (process.env.CI) throw new Error(reason);
  return reason;
}

/** A TCP port free on loopback now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface NodePorts {
  client: number;
  cluster: number;
}

/** One nats-server process: its configuration file and store live in `dir`. */
export class NatsNode {
  private child: ChildProcess | undefined;
  private stderr = '';

  constructor(readonly name: string, readonly ports: NodePorts, private readonly dir: string, private readonly peers: readonly NodePorts[]) {}

  get url(): string {
    return `nats://127.0.0.1:${this.ports.client}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private config(): string {
    const lines = [
      `server_name: ${this.name}`,
      `listen: 127.0.0.1:${this.ports.client}`,
      // Small limits: tests hold little data, and CI machines have little disk.
      `jetstream { store_dir: "${join(this.dir, 'store')}", max_memory_store: 64MB, max_file_store: 512MB }`,
    ];
    if (this.peers.length > 0) {
      const routes = this.peers.map((p) => `"nats://127.0.0.1:${p.cluster}"`).join(', ');
      lines.push(`cluster { name: cangen-test, listen: 127.0.0.1:${this.ports.cluster}, routes: [${routes}] }`);
    }
    return `${lines.join('\n')}\n`;
  }

  /** Starts the process; resolves when it listens for clients (JetStream readiness is the caller's wait). */
  async start(): Promise<void> {
    if (this.running) return;
    const file = join(this.dir, 'nats.conf');
    await writeFile(file, this.config());
    this.stderr = '';
    const child = spawn(natsServerBinary(), ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    this.child = child;
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    await this.listening(10_000);
  }

  private async listening(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`nats-server ${this.name} exited at start: ${this.stderr}`);
      try {
        const nc = await connect({ servers: this.url, reconnect: false, timeout: 500 });
        await nc.close();
        return;
      } catch {
        if (Date.now() > until) throw new Error(`nats-server ${this.name} did not listen on ${this.url} within ${timeoutMs} ms: ${this.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Stops the process hard, as a crash would; its store stays for a restart. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}

/** A single node or a cluster, started and ready for JetStream, with one cleanup. */
export class NatsDeployment {
  private constructor(readonly nodes: NatsNode[], private readonly dir: string) {}

  /** A single JetStream node. */
  static async single(): Promise<NatsDeployment> {
    return NatsDeployment.start(1);
  }

  /** A JetStream cluster of `size` nodes (3 for fault tests: a stream with 3 replicas survives one node down). */
  static async cluster(size = 3): Promise<NatsDeployment> {
    return NatsDeployment.start(size);
  }

  private static async start(size: number): Promise<NatsDeployment> {
    const dir = await mkdtemp(join(tmpdir(), 'cangen-nats-'));
    const ports: NodePorts[] = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort() });
    const nodes = ports.map((p, i) => new NatsNode(`n${i + 1}`, p, join(dir, `n${i + 1}`), size > 1 ? ports.filter((q) => q !== p) : []));
    const deployment = new NatsDeployment(nodes, dir);
    try {
      for (const node of nodes) await mkdir(join(dir, node.name), { recursive: true });
      await Promise.all(nodes.map((n) => n.start()));
      await deployment.jetStreamReady(30_000);
    } catch (error) {
      await deployment.stop();
      throw error;
    }
    return deployment;
  }

  /** Client URLs of every node (a client given all of them fails over). */
  get servers(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Resolves when JetStream answers through every running node (a cluster has elected its meta leader). */
  async jetStreamReady(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (const node of this.nodes.filter((n) => n.running)) {
      for (;;) {
        try {
          const nc = await connect({ servers: node.url, reconnect: false, timeout: 1000 });
          try {
            const jsm = await nc.jetstreamManager({ timeout: 1000 });
            await jsm.getAccountInfo();
            break;
          } finally {
            await nc.close();
          }
        } catch (error) {
          if (Date.now() > until) throw new Error(`JetStream on ${node.name} was not ready within ${timeoutMs} ms: ${(error as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  }

  /** Stops every node and removes their stores. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

