/**
 * Typed errors. Every failure cangen reports is a CangenError subclass with a stable string
 * `code`, so callers can `switch (err.code)`. Native failures arrive as the same classes.
 */
export type CangenErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_DIMENSION_MISMATCH'
  | 'ERR_NON_FINITE'
  | 'ERR_DUPLICATE_ID'
  | 'ERR_CLOSED'
  | 'ERR_NO_DEVICE'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_CORRUPT_FILE'
  | 'ERR_UNSUPPORTED_FORMAT'
  | 'ERR_IO'
  | 'ERR_INTERNAL'
  | 'ERR_RESOURCE_LIMIT'
  | 'ERR_ABORTED'
  // learned scorers (lib/scorer)
  | 'ERR_MODEL_FORMAT'
  | 'ERR_UNKNOWN_SCENARIO'
  | 'ERR_UNKNOWN_HEAD'
  // orchestration (lib/orchestration)
  | 'ERR_UNKNOWN_GENERATOR'
  | 'ERR_EMBEDDER'
  | 'ERR_STATE_FILE'
  | 'ERR_CONFIG'
  // the durable corpus (lib/corpus)
  | 'ERR_CATALOG'
  | 'ERR_CORPUS_FAILED'
  | 'ERR_CORPUS_REMOTE'
  | 'ERR_STORE_OWNED';

export class CangenError extends Error {
  readonly code: CangenErrorCode;

  constructor(code: CangenErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A value of the wrong type, range or shape (k < 1, an unknown option, a negative id). */
export class InvalidArgumentError extends CangenError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** A vector or query whose length does not match the index's dimension. */
export class DimensionMismatchError extends CangenError {
  constructor(message: string) {
    super('ERR_DIMENSION_MISMATCH', message);
  }
}

/** NaN or Infinity in an embedding or a query. */
export class NonFiniteError extends CangenError {
  constructor(message: string) {
    super('ERR_NON_FINITE', message);
  }
}

/** An id already in the index, or twice in one batch. Nothing of the batch was added. */
export class DuplicateIdError extends CangenError {
  constructor(message: string) {
    super('ERR_DUPLICATE_ID', message);
  }
}

/** Use of an index after close(). */
export class ClosedError extends CangenError {
  constructor(message: string) {
    super('ERR_CLOSED', message);
  }
}

/** A GPU was requested but this build has no CUDA support or this machine no usable device. */
export class NoDeviceError extends CangenError {
  constructor(message: string) {
    super('ERR_NO_DEVICE', message);
  }
}

/** The native addon could not be loaded; the message lists the likely fixes. */
export class NativeLoadError extends CangenError {
  constructor(message: string) {
    super('ERR_NATIVE_LOAD', message);
  }
}

/** A saved index that is truncated, damaged, or not an index; the file on disk is left as it is. */
export class CorruptFileError extends CangenError {
  constructor(message: string) {
    super('ERR_CORRUPT_FILE', message);
  }
}

/** A saved index written by a newer cangen than this one. */
export class UnsupportedFormatError extends CangenError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_FORMAT', message);
  }
}

/** The file system refused a read or write (missing file, permissions, no space). */
export class IoError extends CangenError {
  constructor(message: string) {
    super('ERR_IO', message);
  }
}

/** A bug or an exhausted resource (out of memory); the message says which. */
export class InternalError extends CangenError {
  constructor(message: string) {
    super('ERR_INTERNAL', message);
  }
}

/** A request larger than a configured limit (the result memory budget of `setLimits`). */
export class ResourceLimitError extends CangenError {
  constructor(message: string) {
    super('ERR_RESOURCE_LIMIT', message);
  }
}

/** The caller gave up (its AbortSignal fired) and the work stopped before its end. */
export class AbortedError extends CangenError {
  constructor(message: string) {
    super('ERR_ABORTED', message);
  }
}

const byCode: Record<string, new (message: string) => CangenError> = {
  ERR_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_DIMENSION_MISMATCH: DimensionMismatchError,
  ERR_NON_FINITE: NonFiniteError,
  ERR_DUPLICATE_ID: DuplicateIdError,
  ERR_CLOSED: ClosedError,
  ERR_NO_DEVICE: NoDeviceError,
  ERR_NATIVE_LOAD: NativeLoadError,
  ERR_CORRUPT_FILE: CorruptFileError,
  ERR_UNSUPPORTED_FORMAT: UnsupportedFormatError,
  ERR_IO: IoError,
  ERR_INTERNAL: InternalError,
  ERR_RESOURCE_LIMIT: ResourceLimitError,
  ERR_ABORTED: AbortedError,
};

/** Builds the error class registered for a native error code. */
export function errorFromCode(code: string, message: string): CangenError {
  const ErrorClass = byCode[code] ?? InternalError;
  return new ErrorClass(message);
}
