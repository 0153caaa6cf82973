/**
 * A reader for the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }), then the raw
 * little-endian tensor bytes, offsets counted from the end of the header. F32 is read as is;
 * F16, BF16 and F64 are converted to float32; I64 (indices, such as a user model's item feature
 * ids) too, exact up to 2^24.
 */
import { ModelFormatError } from './errors';

export interface Tensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const bytesPerElement: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 };
/** Headers larger than this are not safetensors files (the format itself caps it at 100 MB). */
const maxHeaderBytes = 100 * 1024 * 1024;

export function parseSafetensors(file: Uint8Array, source = 'model.safetensors'): Map<string, Tensor> {
  const fail = (why: string) => new ModelFormatError(`${source} is not a valid safetensors file: ${why}`);
  if (file.length < 8) throw fail(`it has ${file.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(maxHeaderBytes, file.length - 8))) {
    throw fail(`the header claims ${headerLength} bytes but the file has ${file.length - 8} after the length (truncated?)`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, dataStart)));
  } catch (error) {
    throw fail(`its header is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw fail('its header is not a JSON object');
  const dataLength = file.length - dataStart;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw fail(`entry '${name}' is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in bytesPerElement)) {
      throw fail(`tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; cangen reads F32, F16, BF16, F64 and I64`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`tensor '${name}' has shape ${JSON.stringify(e.shape)}, not a list of sizes`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw fail(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const shape = e.shape as number[];
    const count = shape.reduce((a, b) => a * b, 1);
    const width = bytesPerElement[e.dtype]!;
    if (end < begin || end > dataLength) {
      throw fail(`tensor '${name}' spans bytes [${begin}, ${end}) but the data section has ${dataLength} (truncated?)`);
    }
    if (end - begin !== count * width) {
      throw fail(`tensor '${name}' of shape [${shape.join(', ')}] ${e.dtype} needs ${count * width} bytes but spans ${end - begin}`);
    }
    tensors.set(name, { dtype: e.dtype, shape, data: decode(file, dataStart + begin, count, e.dtype) });
  }
  return tensors;
}

function decode(file: Uint8Array, at: number, count: number, dtype: string): Float32Array {
  const view = new DataView(file.buffer, file.byteOffset + at, count * bytesPerElement[dtype]!);
  const out = new Float32Array(count);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'F64') for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
  else if (dtype === 'I64') for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(8 * i, true));
  else if (dtype === 'BF16') {
    const bits = new Uint32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    for (let i = 0; i < count; i++) {
      bits[0] = view.getUint16(2 * i, true) << 16;
      out[i] = asFloat[0]!;
    }
  } else for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
