/**
 * Training an IVF shard from its own log. An IVF index needs centroids (and codebooks) before it
 * takes ads, and a shard replica's only source of ads is its log: so a replica whose index is not
 * trained holds back the log's messages, keeps the live embeddings they leave in log order, trains
 * on the first `sample` of them once there are that many (or once it has caught up with at least
 * `minimum`), then applies the held messages in order. Replicas of a shard read the same log, so a
 * count-triggered training sees the same sample on each (and FAISS's k-means is seeded): their
 * indexes agree. A replica that starts from a snapshot loads a trained index and skips all this.
 */
import type { JsMsg } from 'nats';
import { integerIn, knownOptions } from '../validate';
import type { CorpusUpdate } from './update-codec';

export interface TrainOptions {
  /** Live ads to train on (default 100000): training starts as soon as the log has left this many. */
  sample?: number;
  /** Once caught up with the log, train on what there is if at least this many (default 1000; FAISS needs at least nlist). */
  minimum?: number;
}

/** A held log message: its update (undefined when it did not decode: dead-lettered once applied). */
export interface HeldMessage {
  msg: JsMsg;
  update?: CorpusUpdate;
  error?: unknown;
}

export function checkTrainOptions(options: TrainOptions | undefined): Required<TrainOptions> {
  const o = knownOptions(options ?? {}, 'replica options.train', ['sample', 'minimum']);
  const sample = integerIn(o.sample ?? 100_000, 'options.train.sample', 1, 100_000_000);
  return { sample, minimum: integerIn(o.minimum ?? Math.min(1000, sample), 'options.train.minimum', 1, sample) };
}

export class LogTrainer {
  private readonly held: HeldMessage[] = [];
  /** Live embeddings by id, in the order the log first wrote them (a Map keeps insertion order). */
  private readonly live = new Map<bigint, Float32Array>();
  /** The last log sequence held: messages at or below it are not held twice after a consumer reset. */
  heldThrough = 0;

  constructor(private readonly options: Required<TrainOptions>, private readonly dim: number) {}

  get heldMessages(): number {
    return this.held.length;
  }

  get liveAds(): number {
    return this.live.size;
  }

  hold(message: HeldMessage): void {
    this.held.push(message);
    this.heldThrough = message.msg.seq;
    const u = message.update;
    if (u?.op === 'upsert' && u.dim === this.dim) {
      u.ids.forEach((id, i) => this.live.set(id, u.vectors!.subarray(i * this.dim, (i + 1) * this.dim)));
    } else if (u?.op === 'remove') {
      for (const id of u.ids) this.live.delete(id);
    }
  }

  /** Enough ads to train on: the full sample, or the minimum once the replica has caught up with its log. */
  ready(caughtUp: boolean): boolean {
    return this.live.size >= this.options.sample || (caughtUp && this.live.size >= this.options.minimum);
  }

  /** The first `sample` live embeddings in log order, n x dim. */
  sampleVectors(): Float32Array {
    const n = Math.min(this.options.sample, this.live.size);
    const out = new Float32Array(n * this.dim);
    let row = 0;
    for (const vector of this.live.values()) {
      if (row === n) break;
      out.set(vector, row++ * this.dim);
    }
    return out;
  }

  /** The held messages, in log order, handed over once: the trainer is done with them. */
  release(): HeldMessage[] {
    const out = this.held.splice(0);
    this.live.clear();
    return out;
  }
}
