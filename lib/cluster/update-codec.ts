/**
 * The binary format of a corpus log message (one per shard and batch), version 1, little-endian:
 *
 *   offset 0   4 bytes  magic 'CGUP'
 *          4   u8       format version (1)
 *          5   u8       operation: 1 upsert, 2 remove, 3 set attributes
 *          6   u16      reserved (0)
 *          8   u32      n, ads in the message
 *         12   u32      dim (upsert: the embedding dimension; otherwise 0)
 *         16   i64 x n  ad ids (>= 0)
 *              f32 x n*dim  embeddings, row-major (upsert)
 *              u32 x n*6    attributes: active, budget, advertiser, campaign, category, geo
 *                           (upsert and set attributes)
 *
 * Every section is 4- or 8-byte aligned. decodeUpdate() checks each field and the exact length,
 * and throws MalformedMessageError naming what is wrong: a replica dead-letters such a message.
 */
import { MalformedMessageError } from './errors';

export type UpdateOperation = 'upsert' | 'remove' | 'setAttributes';
const operations: readonly UpdateOperation[] = ['upsert', 'remove', 'setAttributes'];
const magic = [0x43, 0x47, 0x55, 0x50]; // 'CGUP'
export const updateFormatVersion = 1;
const headerBytes = 16;
const attributeFields = 6;

export interface CorpusUpdate {
  op: UpdateOperation;
  ids: BigInt64Array;
  /** upsert: n x dim. */
  vectors?: Float32Array;
  dim?: number;
  /** upsert and setAttributes: n x 6. */
  attributes?: Uint32Array;
}

/** Bytes of a message holding `n` ads of dimension `dim` for `op`. */
export function updateBytes(op: UpdateOperation, n: number, dim: number): number {
  const vectors = op === 'upsert' ? n * dim * 4 : 0;
  const attributes = op === 'remove' ? 0 : n * attributeFields * 4;
  return headerBytes + n * 8 + vectors + attributes;
}

export function encodeUpdate(update: CorpusUpdate): Uint8Array {
  const n = update.ids.length;
  const dim = update.op === 'upsert' ? update.dim! : 0;
  const out = new Uint8Array(updateBytes(update.op, n, dim));
  const view = new DataView(out.buffer);
  out.set(magic, 0);
  out[4] = updateFormatVersion;
  out[5] = operations.indexOf(update.op) + 1;
  view.setUint32(8, n, true);
  view.setUint32(12, dim, true);
  let offset = headerBytes;
  new BigInt64Array(out.buffer, offset, n).set(update.ids);
  offset += n * 8;
  if (update.op === 'upsert') {
    new Float32Array(out.buffer, offset, n * dim).set(update.vectors!);
    offset += n * dim * 4;
  }
  if (update.op !== 'remove') new Uint32Array(out.buffer, offset, n * attributeFields).set(update.attributes!);
  return out;
}

/** Decodes and checks a log message; the arrays are copies (aligned), never views of `bytes`. */
export function decodeUpdate(bytes: Uint8Array): CorpusUpdate {
  if (bytes.length < headerBytes) throw new MalformedMessageError(`Expected at least ${headerBytes} bytes for a corpus update but received ${bytes.length}`);
  if (magic.some((b, i) => bytes[i] !== b)) throw new MalformedMessageError("Expected a corpus update starting with 'CGUP'");
  if (bytes[4] !== updateFormatVersion) throw new MalformedMessageError(`Expected corpus update format version ${updateFormatVersion} but received ${bytes[4]}: a newer cangen wrote it`);
  const op = operations[bytes[5]! - 1];
  if (op === undefined) throw new MalformedMessageError(`Expected operation 1, 2 or 3 but received ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true);
  const dim = view.getUint32(12, true);
  if ((op === 'upsert') !== (dim > 0)) throw new MalformedMessageError(`Expected dim > 0 for an upsert and 0 otherwise but received ${dim} for ${op}`);
  if (bytes.length !== updateBytes(op, n, dim)) {
    throw new MalformedMessageError(`Expected ${updateBytes(op, n, dim)} bytes for ${op} of ${n} ads (dim ${dim}) but received ${bytes.length}`);
  }
  const copy = new Uint8Array(bytes); // a private, aligned copy (a Buffer's slice() would be a view into its pool)
  let offset = headerBytes;
  const ids = new BigInt64Array(copy.buffer, offset, n);
  offset += n * 8;
  for (let i = 0; i < n; i++) if (ids[i]! < 0n) throw new MalformedMessageError(`Expected ad ids >= 0 but id ${i} is ${ids[i]}`);
  const update: CorpusUpdate = { op, ids };
  if (op === 'upsert') {
    update.dim = dim;
    update.vectors = new Float32Array(copy.buffer, offset, n * dim);
    offset += n * dim * 4;
  }
  if (op !== 'remove') {
    const attributes = new Uint32Array(copy.buffer, offset, n * attributeFields);
    for (let i = 0; i < n; i++) {
      if (attributes[i * attributeFields]! > 1 || attributes[i * attributeFields + 1]! > 2) {
        throw new MalformedMessageError(`Expected active 0 or 1 and budget 0, 1 or 2 in attributes row ${i}`);
      }
    }
    update.attributes = attributes;
  }
  return update;
}
