/** Errors of the durable corpus: the catalog refused or could not be read, or the corpus stopped. */
import { CangenError } from '../errors';

export type CorpusErrorCode = 'ERR_CATALOG' | 'ERR_CORPUS_FAILED' | 'ERR_STORE_OWNED' | 'ERR_CORPUS_REMOTE';

export class CorpusError extends CangenError {
  constructor(code: CorpusErrorCode, message: string) {
    super(code, message);
  }
}
