/**
 * Serving a trained user model natively: users' recent events in, query embeddings out, equal to
 * the trainer's PyTorch module (docs/SEQUENCES.md). The encoding runs off the main thread.
 */
import { defaults } from '../defaults';
import { resolveDevice } from '../device';
import { ClosedError } from '../errors';
import { native, type NativeSequenceEncoder } from '../native';
import { integerIn, invalid, knownOptions, oneOf } from '../validate';
import { withCallerStack } from '../caller-stack';
import { withPrivateInputs } from '../private-input';
import type { SequenceConfig } from './config';
import { checkHistories, type SequenceEncodeDeviceOptions, type SequenceHistories } from './histories';
import { readSequenceModel, toNativeSequenceModel } from './model';
import { defaultSessionBytes, SequenceSessions, type SequenceSessionOptions } from './sessions';

export interface SequenceEncoderOptions {
  /** Threads per encode; 0 (default) uses every core of cangen's thread budget. */
  threads?: number;
}

export class SequenceEncoder {
  readonly config: SequenceConfig;
  readonly threads: number;
  private handle: NativeSequenceEncoder | undefined;
  private readonly rowOf: Map<string, number>;
  private readonly actionRowOf: Map<string, number>;
  private readonly items: Float32Array;

  private constructor(config: SequenceConfig, handle: NativeSequenceEncoder, threads: number, itemIds: string[], actionNames: string[], items: Float32Array) {
    this.config = config;
    this.handle = handle;
    this.threads = threads;
    this.rowOf = new Map(itemIds.map((id, i) => [id, i + 1]));
    this.actionRowOf = new Map(actionNames.map((name, i) => [name, i + 1]));
    this.items = items;
  }

  /**
   * Loads a directory exported by cangen's trainer (`cangen-user-model` v1, docs/TRAINING.md).
   * Missing, truncated or corrupt files, tensors that contradict config.json, or non-finite
   * weights reject with ModelFormatError (`ERR_MODEL_FORMAT`) naming the file and tensor.
   * @example
   * const encoder = await SequenceEncoder.load('models/beauty-hstu');
   * const items = encoder.rows(['B0001', 'B0042', 'B0007']);
   * const queries = await encoder.encode({ items, offsets: Uint32Array.of(0, 3) }); // 1 x interests x dim
   */
  static async load(dir: string, options?: SequenceEncoderOptions): Promise<SequenceEncoder> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalid('a model directory path', 'dir', dir);
    const o = knownOptions(options, 'sequence encoder options', ['threads']);
    const threads = integerIn(o.threads ?? defaults.threads, 'options.threads', 0, 4096);
    const model = await readSequenceModel(dir);
    const handle = new (native().NativeSequenceEncoder)(toNativeSequenceModel(model));
    return new SequenceEncoder(model.config, handle, threads, model.itemIds, model.actionNames, model.tensors.get('item_embeddings')!.data);
  }

  get dim(): number {
    return this.config.dim;
  }
  /** Query embeddings per user. */
  get interests(): number {
    return this.config.interests;
  }
  /** The most recent events the model reads; older ones are left out. */
  get maxLen(): number {
    return this.config.maxLen;
  }
  get numItems(): number {
    return this.config.numItems;
  }
  get closed(): boolean {
    return this.handle === undefined;
  }

  /** The model row of each original item id (items.txt), 0 for ids the model does not know. Bigints match their decimal form. */
  rows(itemIds: readonly (string | bigint)[]): Int32Array {
    if (!Array.isArray(itemIds)) throw invalid('an array of item ids (strings or bigints)', 'itemIds', itemIds);
    const out = new Int32Array(itemIds.length);
    for (let i = 0; i < itemIds.length; i++) {
      const id = itemIds[i];
      if (typeof id !== 'string' && typeof id !== 'bigint') throw invalid('a string or bigint', `itemIds[${i}]`, id);
      out[i] = this.rowOf.get(typeof id === 'string' ? id : id.toString()) ?? 0;
    }
    return out;
  }

  /** The action row of each action name (actions.txt), 0 for names the model does not know. */
  actionRows(names: readonly string[]): Int32Array {
    if (!Array.isArray(names)) throw invalid('an array of action names', 'names', names);
    return Int32Array.from(names, (name) => this.actionRowOf.get(name) ?? 0);
  }

  /**
   * The exported item embeddings, (numItems + 1) x dim, row 0 padding: the vectors to search
   * with the queries (an AdIndex for the dot head, LearnedScorer.load(dir + '/scorer') for MoL).
   * L2-normalised when the model's dot head normalises. Shared, do not modify.
   */
  itemEmbeddings(): Float32Array {
    return this.items;
  }

  /**
   * The query embeddings of a batch of users: users x interests x dim, user-major. Per user, the
   * known events (unknown item rows skipped) are truncated to the most recent maxLen; a user with
   * none gets the model's no-history query (the same for every such user).
   * `device: 'gpu'` runs the encoder's layers on a CUDA device for the whole batch at once (equal
   * to the CPU's queries to about 1e-5 relative; docs/SEQUENCES.md, "On a GPU").
   * @example
   * // two users: [a, b, c] and [d]
   * const q = await encoder.encode({ items: encoder.rows(['a', 'b', 'c', 'd']), offsets: Uint32Array.of(0, 3, 4) });
   * const onGpu = await encoder.encode(histories, { device: 'auto' }); // the GPU when there is one
   */
  encode(histories: SequenceHistories, options?: SequenceEncodeDeviceOptions): Promise<Float32Array> {
    const handle = this.open();
    const { items, offsets, actions, times } = checkHistories(histories);
    const o = knownOptions(options, 'encode options', ['threads', 'device', 'gpuDevice']);
    const threads = integerIn(o.threads ?? 0, 'options.threads', 0, 4096) || this.threads;
    const device = resolveDevice(oneOf(o.device ?? defaults.device, 'options.device', ['cpu', 'gpu', 'auto']));
    const gpuDevice = integerIn(o.gpuDevice ?? defaults.gpuDevice, 'options.gpuDevice', 0, 1024);
    const call = withPrivateInputs([items, offsets, actions, times], ['items', 'offsets', 'actions', 'times'], (i, off, a, t) =>
      handle.encode(i, off, a, t, threads, device === 'gpu' ? 1 : 0, gpuDevice),
    );
    return withCallerStack(call);
  }

  /**
   * A cache of per-user sessions over this encoder, so that a user whose history grew by a few
   * events costs a few steps instead of a full run (HSTU; see SequenceSessions). Sessions encode
   * on the CPU: their per-user keys and values live in host memory, and one appended event is a
   * few small products, cheaper here than a round trip to a device.
   * @example
   * const sessions = encoder.sessions({ maxBytes: 64 << 20 });
   * const q = await sessions.encode(['u1'], { items, offsets });   // = encoder.encode({ items, offsets })
   */
  sessions(options?: SequenceSessionOptions): SequenceSessions {
    const o = knownOptions(options, 'session options', ['maxBytes']);
    const maxBytes = integerIn(o.maxBytes ?? defaultSessionBytes, 'options.maxBytes', 0, Number.MAX_SAFE_INTEGER);
    return new SequenceSessions(new (native().NativeSequenceSessions)(this.open(), maxBytes), this.threads);
  }

  /** Frees the native model; later calls throw ClosedError. Encodes already running finish. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private open(): NativeSequenceEncoder {
    if (!this.handle) throw new ClosedError('This sequence encoder is closed: load the model again to encode');
    return this.handle;
  }
}
