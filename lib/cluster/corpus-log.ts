/**
 * The writer side of the corpus log: upserts, removes and attribute changes are split by shard
 * (shard-hash.ts) and published to each shard's subject of the log stream. A write's Promise
 * resolves only when JetStream has stored every message of it (its publish acknowledgement, which
 * with a replicated stream means a quorum of servers has it), and gives the log position to read
 * it back (readAfter). Inputs are checked here, before anything is published, with the same rules
 * the index applies, so an acknowledged write is one every replica can apply.
 */
import type { JetStreamClient, NatsConnection } from 'nats';
import { packAttributes, type AdAttributes } from '../ad-index';
import { DuplicateIdError, InvalidArgumentError, NonFiniteError } from '../errors';
import { toIdArray, type IdsInput } from '../ids';
import { integerIn, knownOptions, rowsPerId } from '../validate';
import { publishStored } from './publish';
import type { LogPosition } from './log-position';
import { clusterNames, type ClusterNames } from './names';
import { rowsByShard, shardOf, shardOfAdvertiser } from './shard-hash';
import { readShardMap, type ShardMap } from './shard-map';
import { encodeUpdate, updateBytes, type CorpusUpdate, type UpdateOperation } from './update-codec';

/** The advertiser's column in packed attributes (active, budget, advertiser, campaign, category, geo). */
const advertiserColumn = 2;

/** Room left in each message below the server's max_payload for the protocol's own bytes. */
const payloadHeadroom = 4096;

export interface CorpusLogOptions {
  /**
   * How long a message's publish is retried when JetStream does not store it (no stream leader
   * while a server fails over, a timeout): default 10000 ms, 0 to fail at once. Each message
   * carries a unique id, so a retry of a message that was stored after all is de-duplicated by
   * the stream (within its 2-minute duplicate window) rather than logged twice.
   */
  retryForMs?: number;
}

export interface CorpusLogStats {
  /** Messages stored (acknowledged by the stream). */
  messages: number;
  /** Publish attempts that failed and were retried. */
  retries: number;
}

export class CorpusLog {
  private readonly counters: CorpusLogStats = { messages: 0, retries: 0 };

  private constructor(private readonly js: JetStreamClient, readonly map: ShardMap, private readonly names: ClusterNames, private readonly maxPayload: number,
    private readonly retryForMs: number) {}

  /** Binds to a cluster's log; NoShardMapError when the cluster was never initialised. */
  static async open(nc: NatsConnection, cluster: string, options: CorpusLogOptions = {}): Promise<CorpusLog> {
    const o = knownOptions(options, 'CorpusLog options', ['retryForMs']);
    const retryForMs = integerIn(o.retryForMs ?? 10_000, 'options.retryForMs', 0, 600_000);
    const map = await readShardMap(nc, cluster);
    return new CorpusLog(nc.jetstream(), map, clusterNames(cluster), nc.info?.max_payload ?? 1024 * 1024, retryForMs);
  }

  stats(): CorpusLogStats {
    return { ...this.counters };
  }

  /** Inserts or replaces ads (embedding and attributes; attributes default as AdIndex.upsert's do). */
  async upsert(ids: IdsInput, vectors: Float32Array, attributes?: readonly AdAttributes[] | Uint32Array): Promise<LogPosition> {
    const idArray = uniqueIds(ids);
    const { dim, metric } = this.map;
    rowsPerId(vectors, idArray.length, dim);
    for (let i = 0; i < vectors.length; i++) {
      if (!Number.isFinite(vectors[i])) throw new NonFiniteError(`Expected finite embeddings but vectors[${i}] (ad ${idArray[Math.floor(i / dim)]}) is ${vectors[i]}`);
    }
    if (metric === 'cosine') {
      for (let r = 0; r < idArray.length; r++) {
        if (vectors.subarray(r * dim, (r + 1) * dim).every((v) => v === 0)) throw new InvalidArgumentError(`Expected a non-zero embedding for metric 'cosine' but ad ${idArray[r]} is all zeros`);
      }
    }
    if (attributes === undefined && this.map.placement === 'advertiser') {
      throw new InvalidArgumentError(`Expected attributes with each ad's advertiser: cluster '${this.map.cluster}' places ads on shards by advertiser`);
    }
    const packed = attributes === undefined ? defaultAttributes(idArray.length) : packAttributes(attributes, idArray.length);
    const byAdvertiser = this.map.placement === 'advertiser';
    const byShard = rowsByShard(idArray.length, this.map.shards, (row) => byAdvertiser ? shardOfAdvertiser(packed[row * 6 + advertiserColumn]!, this.map.shards) : shardOf(idArray[row]!, this.map.shards));
    return this.publish('upsert', byShard, (rows) => ({
      op: 'upsert', dim, ids: pick(idArray, rows, 1), vectors: pick(vectors, rows, dim), attributes: pick(packed, rows, 6),
    }));
  }

  /** Removes ads (an id no shard holds is not an error, as with AdIndex.remove). Under placement 'advertiser', sent to every shard. */
  async remove(ids: IdsInput): Promise<LogPosition> {
    const idArray = uniqueIds(ids);
    return this.publish('remove', this.byAdId(idArray), (rows) => ({ op: 'remove', ids: pick(idArray, rows, 1) }));
  }

  /** Changes the attributes of ads (a paused ad, an exhausted budget) without touching embeddings. */
  async setAttributes(ids: IdsInput, attributes: readonly AdAttributes[] | Uint32Array): Promise<LogPosition> {
    const idArray = uniqueIds(ids);
    const packed = packAttributes(attributes, idArray.length);
    return this.publish('setAttributes', this.byAdId(idArray), (rows) => ({ op: 'setAttributes', ids: pick(idArray, rows, 1), attributes: pick(packed, rows, 6) }));
  }

  /**
   * The rows of a write that names ads by id only: each to its ad's shard, or, when ads are placed
   * by advertiser (which the write does not give), all to every shard (absent ids are ignored there).
   */
  private byAdId(ids: BigInt64Array): number[][] {
    if (this.map.placement === 'advertiser') return Array.from({ length: this.map.shards }, () => Array.from(ids.keys()));
    return rowsByShard(ids.length, this.map.shards, (row) => shardOf(ids[row]!, this.map.shards));
  }

  private async publish(op: UpdateOperation, byShard: number[][], build: (rows: number[]) => CorpusUpdate): Promise<LogPosition> {
    const perMessage = Math.max(1, Math.floor((this.maxPayload - payloadHeadroom - updateBytes(op, 0, 0)) / (updateBytes(op, 1, this.map.dim) - updateBytes(op, 0, 0))));
    const position: Record<number, number> = {};
    // Shards in parallel; one shard's messages in order, so they are applied in the order given.
    await Promise.all(byShard.map(async (rows, shard) => {
      for (let start = 0; start < rows.length; start += perMessage) {
        const payload = encodeUpdate(build(rows.slice(start, start + perMessage)));
        position[shard] = await this.store(op, shard, payload);
      }
    }));
    return position;
  }

  /** Publishes one message until the stream acknowledges it or retryForMs passes; returns its sequence. */
  private async store(op: UpdateOperation, shard: number, payload: Uint8Array): Promise<number> {
    const seq = await publishStored(this.js, this.names.shardSubject(shard), payload, { retryForMs: this.retryForMs, what: `a ${op} for shard ${shard}`, onRetry: () => this.counters.retries++ });
    this.counters.messages++;
    return seq;
  }
}

function uniqueIds(ids: IdsInput): BigInt64Array {
  const idArray = toIdArray(ids);
  const seen = new Set<bigint>();
  for (const id of idArray) {
    if (seen.has(id)) throw new DuplicateIdError(`Expected each ad id once per write but ${id} repeats: nothing was written`);
    seen.add(id);
  }
  return idArray;
}

/** Active, budget available, every other attribute 0: AdIndex.upsert's defaults. */
function defaultAttributes(n: number): Uint32Array {
  const out = new Uint32Array(n * 6);
  for (let i = 0; i < n; i++) out[i * 6] = 1;
  return out;
}

/** The given rows (of `width` values each) of a typed array, in order. */
function pick<T extends BigInt64Array | Float32Array | Uint32Array>(values: T, rows: readonly number[], width: number): T {
  const out = new (values.constructor as new (n: number) => T)(rows.length * width);
  rows.forEach((row, i) => out.set(values.subarray(row * width, (row + 1) * width) as never, i * width));
  return out;
}
