/**
 * Errors of the orchestration layer. They extend CangenError so that callers handle every cangen
 * failure the same way (`switch (err.code)`); their codes are listed here.
 */
import { CangenError, type CangenErrorCode } from '../errors';

export type OrchestrationErrorCode =
  | 'ERR_UNKNOWN_SCENARIO'
  | 'ERR_UNKNOWN_GENERATOR'
  | 'ERR_EMBEDDER'
  | 'ERR_EMBEDDER_BUDGET'
  | 'ERR_STATE_FILE'
  | 'ERR_CONFIG';

// The foundation's CangenErrorCode union names its own codes only; ours widen it here.
function asCode(code: OrchestrationErrorCode): CangenErrorCode {
  return code as unknown as CangenErrorCode;
}

/** A request named a scenario that is not configured: one class for the code, shared with lib/scorer. */
export { UnknownScenarioError } from '../scorer/errors';

/** A scenario or quota named a generator that is not registered. */
export class UnknownGeneratorError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_UNKNOWN_GENERATOR'), message);
  }
}

/** An embedding source failed: an HTTP error, a timeout, or a reply of the wrong shape. */
export class EmbedderError extends CangenError {
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(asCode('ERR_EMBEDDER'), message);
    this.status = status;
  }
}

/** Query texts needing a (paid) embedder call came faster than the configured budget allows. */
export class EmbedderBudgetError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_EMBEDDER_BUDGET'), message);
  }
}

/** A state file could not be read or written, or holds something other than cangen state. */
export class StateFileError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_STATE_FILE'), message);
  }
}

/** A configuration file or variable is invalid. */
export class ConfigError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_CONFIG'), message);
  }
}
