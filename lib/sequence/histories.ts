/** Users' histories as encode takes them: flat typed arrays and offsets, checked once here. */
import type { DeviceChoice } from '../device';
import { DimensionMismatchError, InvalidArgumentError, NonFiniteError } from '../errors';
import { invalid, knownOptions } from '../validate';

/**
 * A batch of users' histories as flat typed arrays, oldest event first within each user: user u's
 * events are `items[offsets[u] .. offsets[u + 1])`.
 */
export interface SequenceHistories {
  /** Model item rows (`encoder.rows(ids)`); 0 or any row outside [1, numItems] is an unknown item, skipped. */
  items: Int32Array;
  /** users + 1 non-decreasing offsets, from 0 to items.length. */
  offsets: Uint32Array;
  /** Action rows (`encoder.actionRows(names)`), one per event; 0 or out of range: no action. Ignored by models without actions. */
  actions?: Int32Array;
  /** Event times in seconds, one per event. Only |t_i - t_j| is used. Ignored by models without time bias. */
  times?: Float64Array;
}

/** The histories checked as encode takes them (also for SequenceSessions). */
export function checkHistories(histories: SequenceHistories): { items: Int32Array; offsets: Uint32Array; actions: Int32Array | null; times: Float64Array | null } {
  const h = knownOptions(histories, 'histories', ['items', 'offsets', 'actions', 'times']) as Partial<SequenceHistories>;
  const { items, offsets } = h;
  if (!(items instanceof Int32Array)) throw invalid('an Int32Array of item rows', 'histories.items', items);
  if (!(offsets instanceof Uint32Array) || offsets.length < 1) throw invalid('a Uint32Array of users + 1 offsets', 'histories.offsets', offsets);
  if (offsets[0] !== 0 || offsets[offsets.length - 1] !== items.length) {
    throw new InvalidArgumentError(
      `Expected histories.offsets to run from 0 to items.length ${items.length} but it runs from ${offsets[0]} to ${offsets[offsets.length - 1]}`,
    );
  }
  for (let u = 1; u < offsets.length; u++) {
    if (offsets[u]! < offsets[u - 1]!) {
      throw new InvalidArgumentError(`Expected non-decreasing histories.offsets but offsets[${u}] = ${offsets[u]} < offsets[${u - 1}] = ${offsets[u - 1]}`);
    }
  }
  const actions = h.actions ?? null;
  if (actions !== null && !(actions instanceof Int32Array)) throw invalid('an Int32Array of action rows', 'histories.actions', actions);
  const times = h.times ?? null;
  if (times !== null && !(times instanceof Float64Array)) throw invalid('a Float64Array of times in seconds', 'histories.times', times);
  for (const [name, array] of [['actions', actions], ['times', times]] as const) {
    if (array && array.length !== items.length) {
      throw new DimensionMismatchError(`Expected histories.${name} of one value per event (${items.length}) but received ${array.length}`);
    }
  }
  if (times) {
    for (let e = 0; e < times.length; e++) {
      if (!Number.isFinite(times[e]!)) throw new NonFiniteError(`Expected finite histories.times but times[${e}] is ${times[e]}`);
    }
  }
  return { items, offsets, actions, times };
}

export interface SequenceEncodeOptions {
  /** Threads for this call; 0 (default) uses the encoder's setting. */
  threads?: number;
}

/** SequenceEncoder.encode's options: SequenceSessions always encode on the CPU. */
export interface SequenceEncodeDeviceOptions extends SequenceEncodeOptions {
  /**
   * 'cpu', 'gpu' (the encoder's layers on a CUDA device; rejects with NoDeviceError when none is
   * usable) or 'auto' (the GPU when buildInfo().cudaDevices > 0). Default: defaults.device ('cpu').
   */
  device?: DeviceChoice;
  /** The CUDA device ordinal for 'gpu' and 'auto' (default defaults.gpuDevice, 0). */
  gpuDevice?: number;
}
