/**
 * What every index kind shares: typed-array arguments checked up front, one native call per
 * operation off the main thread, results as typed arrays, and typed errors with the caller's stack.
 */
import { defaults, maxDim, maxGpuK, maxK } from './defaults';
import { ClosedError, InvalidArgumentError } from './errors';
import { toIdArray, type IdsInput } from './ids';
import { metricCode, metrics, type Metric } from './metric';
import { native, type NativeIndex } from './native';
import { SearchResults } from './results';
import { integerIn, knownOptions, oneOf, rowsPerId, wholeRows } from './validate';
import { withPrivateInputs } from './private-input';

export type DeviceChoice = 'cpu' | 'gpu' | 'auto';

export interface IndexOptions {
  /** Embedding dimension (1 to 65536). */
  dim: number;
  /** 'ip' (default), 'l2' or 'cosine'. */
  metric?: Metric;
  /** Threads per operation; 0 (default) uses every core. */
  threads?: number;
}

export interface SearchOptions {
  /** 'cpu' (default), 'gpu', or 'auto' (the GPU when one is usable). */
  device?: DeviceChoice;
  /** CUDA device ordinal (default 0). */
  gpuDevice?: number;
  /** Threads for this search; 0 (default) uses the index's setting. */
  threads?: number;
}

export const indexOptionNames = ['dim', 'metric', 'threads'] as const;
const searchOptionNames = ['device', 'gpuDevice', 'threads'] as const;

export function parseIndexOptions(options: unknown, name: string, extra: readonly string[] = []) {
  const o = knownOptions(options, name, [...indexOptionNames, ...extra]);
  if (options === undefined) throw new InvalidArgumentError(`Expected an options object with at least { dim } for ${name}`);
  return {
    raw: o,
    dim: integerIn(o.dim, `${name}.dim`, 1, maxDim),
    metric: oneOf(o.metric ?? defaults.metric, `${name}.metric`, metrics),
    threads: integerIn(o.threads ?? defaults.threads, `${name}.threads`, 0, 4096),
  };
}

/**
 * Re-throws a native rejection with the caller's stack, so the trace points at user code.
 * `caller` is an Error made at the call site; its stack is only formatted if something fails,
 * which keeps the success path cheap.
 */
export async function withCallerStack<T>(promise: Promise<T>, caller: Error): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const callerStack = caller.stack;
    if (error instanceof Error && callerStack) {
      error.stack = `${error.name}: ${error.message}\n${callerStack.split('\n').slice(2).join('\n')}`;
    }
    throw error;
  }
}

export abstract class VectorIndex {
  readonly dim: number;
  readonly metric: Metric;
  readonly threads: number;
  protected handle: NativeIndex | undefined;

  protected constructor(handle: NativeIndex, dim: number, metric: Metric, threads: number) {
    this.handle = handle;
    this.dim = dim;
    this.metric = metric;
    this.threads = threads;
  }

  /** Number of ads in the index. */
  get size(): number {
    return this.open().size();
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.handle === undefined;
  }

  /**
   * Adds `ids.length` embeddings (`vectors` is ids.length x dim, row-major). All or nothing: a
   * non-finite value or a duplicate id rejects and adds none. Inputs are copied before any worker
   * reads them (lib/private-input.ts): up to 1 MiB at once, larger ones in slices between
   * event-loop turns, during which their buffer must stay in place.
   */
  async add(ids: IdsInput, vectors: Float32Array): Promise<void> {
    const stack = new Error();
    const handle = this.open();
    const idArray = toIdArray(ids);
    rowsPerId(vectors, idArray.length, this.dim);
    if (idArray.length === 0) return;
    await withCallerStack(withPrivateInputs([idArray, vectors], ['ids', 'vectors'], (i, v) => handle.add(i, v)), stack);
  }

  /**
   * Finds the k best ads for each query (`queries` is nq x dim, row-major). Rows with fewer than
   * k results are padded (id -1, score NaN) and counted in `counts`, never an error.
   */
  async search(queries: Float32Array, k: number, options?: SearchOptions): Promise<SearchResults> {
    const stack = new Error();
    const handle = this.open();
    wholeRows(queries, this.dim, 'queries');
    const o = knownOptions(options, 'search options', searchOptionNames);
    const device = resolveDevice(oneOf(o.device ?? defaults.device, 'options.device', ['cpu', 'gpu', 'auto']));
    integerIn(k, 'k', 1, device === 'gpu' ? maxGpuK : maxK);
    const gpuDevice = integerIn(o.gpuDevice ?? defaults.gpuDevice, 'options.gpuDevice', 0, 1024);
    const threads = integerIn(o.threads ?? 0, 'options.threads', 0, 4096);
    const raw = await withCallerStack(
      withPrivateInputs([queries], ['queries'], (q) => handle.search(q, k, device === 'gpu' ? 1 : 0, gpuDevice, threads)),
      stack,
    );
    return new SearchResults(k, this.metric, raw);
  }

  /** Releases the index's memory. Searches already running finish; later calls throw ClosedError. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  protected open(): NativeIndex {
    if (!this.handle) throw new ClosedError(`This ${this.constructor.name} is closed: create a new one to add or search`);
    return this.handle;
  }
}

let gpuUsable: boolean | undefined;
export function resolveDevice(device: DeviceChoice): 'cpu' | 'gpu' {
  if (device !== 'auto') return device;
  gpuUsable ??= native().buildInfo().cudaDevices > 0;
  return gpuUsable ? 'gpu' : 'cpu';
}

export { metricCode };
