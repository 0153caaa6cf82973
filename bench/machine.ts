/** The machine and software a benchmark ran on, recorded beside its numbers. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { buildInfo } from '../lib';

export function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export function machineInfo(extraPeers: Record<string, string> = {}) {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    buildInfo: buildInfo(),
    peers: { usearch: packageVersion('usearch'), 'hnswlib-node': packageVersion('hnswlib-node'), ...extraPeers },
  };
}
