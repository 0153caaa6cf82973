/** Every default of the public API, in one place. */
export const defaults = {
  /** Metric of a new index. */
  metric: 'ip',
  /** Threads per search or build: 0 means one per core visible to the process. */
  threads: 0,
  /** Where searches run. 'auto' picks the GPU when one is usable. */
  device: 'cpu',
  /** CUDA device ordinal used when device is 'gpu'. */
  gpuDevice: 0,
  /** Cross-request batching of searches (lib/request-batcher.ts): on, at most 64 requests a call, at most 5 ms added wait. */
  batching: { enabled: true, maxBatchSize: 64, maxDelayMs: 5 },
} as const;

/** Largest k a search accepts (results are nq x k typed arrays). */
export const maxK = 1 << 24;
/** Largest k on the GPU path. */
export const maxGpuK = 100_000;
/** Largest embedding dimension. */
export const maxDim = 65_536;
