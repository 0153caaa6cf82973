/**
 * The scorer's typed errors. They extend CangenError like every cangen error, with their own codes
 * (ERR_MODEL_FORMAT, ERR_UNKNOWN_SCENARIO, ERR_UNKNOWN_HEAD).
 */
import { CangenError, type CangenErrorCode } from '../errors';

export type ScorerErrorCode = 'ERR_MODEL_FORMAT' | 'ERR_UNKNOWN_SCENARIO' | 'ERR_UNKNOWN_HEAD';

// The base class types `code` with the codes it knows; ours are added here until the union grows.
const asCode = (code: ScorerErrorCode) => code as string as CangenErrorCode;

/** A model directory that cannot be used: missing or corrupt files, a config/weights mismatch, NaN weights. */
export class ModelFormatError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_MODEL_FORMAT'), message);
  }
}

/** A scenario name the model's config.json does not define. */
export class UnknownScenarioError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_UNKNOWN_SCENARIO'), message);
  }
}

/** A head name the model does not have. */
export class UnknownHeadError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_UNKNOWN_HEAD'), message);
  }
}
