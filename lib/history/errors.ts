/** Errors of the user-history stores (CangenError subclasses, so callers `switch (err.code)`). */
import { CangenError, type CangenErrorCode } from '../errors';

export type HistoryErrorCode = 'ERR_HISTORY_UNAVAILABLE';

// The foundation's CangenErrorCode union names its own codes only; ours widen it here.
const asCode = (code: HistoryErrorCode) => code as unknown as CangenErrorCode;

/**
 * The store cannot take or serve events now (Redis unreachable or refusing writes). Nothing of the
 * failed call was acknowledged: retry it once the store reports healthy again.
 */
export class HistoryUnavailableError extends CangenError {
  constructor(message: string) {
    super(asCode('ERR_HISTORY_UNAVAILABLE'), message);
  }
}
