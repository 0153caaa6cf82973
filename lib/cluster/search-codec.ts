/**
 * The binary payloads of a shard search (router -> replica request, replica -> router reply),
 * version 1, little-endian, every array section aligned to its element size.
 *
 * Request:  0 'CGSQ' | 4 u8 version | 8 u32 k | 12 u32 dim | 16 u32 nq | 20 u32 filter bytes |
 *           24 f64 minimum applied log sequence | 32 u32 wait ms | 36 u32 scorer bytes |
 *           40 f32 x nq*dim queries | filter as JSON (UTF-8; ad ids as decimal strings) |
 *           scorer blend as JSON ({ scenario } or { weights } or {}; absent: a search of the index,
 *           present: a search of the replica's learned scorer with users as queries)
 * Reply:    0 'CGSR' | 4 u8 version | 5 u8 status (0 ok, 1 error) | 8 u32 k | 12 u32 nq |
 *           16 f64 applied sequence | 24 u32 x nq counts | (pad to 8) i64 x nq*k ids | f32 x nq*k scores
 *           An error reply carries JSON { code, message } after the 24-byte header.
 */
import type { EligibilityFilter } from '../ad-index';
import type { BlendOptions } from '../scorer';
import { CangenError } from '../errors';
import type { Metric } from '../metric';
import { SearchResults } from '../results';
import { ClusterError, MalformedMessageError } from './errors';

const requestMagic = [0x43, 0x47, 0x53, 0x51]; // 'CGSQ'
const replyMagic = [0x43, 0x47, 0x53, 0x52]; // 'CGSR'
const version = 1;
const requestHeader = 40;
const replyHeader = 24;

export interface ShardSearchRequest {
  queries: Float32Array;
  dim: number;
  k: number;
  /** The replica answers only once it has applied this log sequence of its shard (0: at once). */
  minApplied: number;
  /** How long the replica may wait for minApplied before it answers with an error. */
  waitMs: number;
  filter?: EligibilityFilter;
  /** Present: rank with the replica's learned scorer (queries are users of its userDim), blended so. */
  scorer?: BlendOptions;
}

export interface ShardSearchReply {
  results: SearchResults;
  /** The replica's applied log sequence when it searched. */
  applied: number;
}

function checkMagic(bytes: Uint8Array, expected: number[], what: string, minimum: number): DataView {
  if (bytes.length < minimum || expected.some((b, i) => bytes[i] !== b)) throw new MalformedMessageError(`Expected a ${what} of at least ${minimum} bytes`);
  if (bytes[4] !== version) throw new MalformedMessageError(`Expected ${what} version ${version} but received ${bytes[4]}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeSearchRequest(request: ShardSearchRequest): Uint8Array {
  const filter = request.filter === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(request.filter, (key, value: unknown) =>
    key === 'ids' && value !== undefined ? Array.from(value as ArrayLike<number | bigint>, (id) => String(id)) : value));
  const scorer = request.scorer === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(request.scorer));
  const nq = request.queries.length / request.dim;
  const out = new Uint8Array(requestHeader + request.queries.length * 4 + filter.length + scorer.length);
  const view = new DataView(out.buffer);
  out.set(requestMagic, 0);
  out[4] = version;
  view.setUint32(8, request.k, true);
  view.setUint32(12, request.dim, true);
  view.setUint32(16, nq, true);
  view.setUint32(20, filter.length, true);
  view.setFloat64(24, request.minApplied, true);
  view.setUint32(32, request.waitMs, true);
  view.setUint32(36, scorer.length, true);
  new Float32Array(out.buffer, requestHeader, request.queries.length).set(request.queries);
  out.set(filter, requestHeader + request.queries.length * 4);
  out.set(scorer, requestHeader + request.queries.length * 4 + filter.length);
  return out;
}

export function decodeSearchRequest(bytes: Uint8Array): ShardSearchRequest {
  const view = checkMagic(bytes, requestMagic, 'shard search request', requestHeader);
  const k = view.getUint32(8, true);
  const dim = view.getUint32(12, true);
  const nq = view.getUint32(16, true);
  const filterBytes = view.getUint32(20, true);
  const scorerBytes = view.getUint32(36, true);
  const filterAt = requestHeader + nq * dim * 4;
  if (bytes.length !== filterAt + filterBytes + scorerBytes) throw new MalformedMessageError(`Expected ${filterAt + filterBytes + scorerBytes} bytes for a search of ${nq} x ${dim} but received ${bytes.length}`);
  const copy = new Uint8Array(bytes); // a private, aligned copy (a Buffer's slice() would be a view)
  const request: ShardSearchRequest = {
    k, dim, queries: new Float32Array(copy.buffer, requestHeader, nq * dim),
    minApplied: view.getFloat64(24, true), waitMs: view.getUint32(32, true),
  };
  if (filterBytes > 0) {
    try {
      const filter = JSON.parse(new TextDecoder().decode(copy.subarray(filterAt, filterAt + filterBytes))) as Omit<EligibilityFilter, 'ids'> & { ids?: string[] };
      const { ids, ...rest } = filter;
      request.filter = ids === undefined ? rest : { ...rest, ids: BigInt64Array.from(ids, (id) => BigInt(id)) };
    } catch (error) {
      throw new MalformedMessageError(`Expected a JSON filter in the shard search request: ${(error as Error).message}`);
    }
  }
  if (scorerBytes > 0) {
    try {
      const blend = JSON.parse(new TextDecoder().decode(copy.subarray(filterAt + filterBytes))) as unknown;
      if (blend === null || typeof blend !== 'object' || Array.isArray(blend)) throw new Error('not an object');
      // The blend only: a request must not reach the scorer's other search options (device, threads, mode).
      const extra = Object.keys(blend).filter((key) => key !== 'scenario' && key !== 'weights');
      if (extra.length > 0) throw new Error(`unknown field '${extra[0]}'`);
      request.scorer = blend as BlendOptions;
    } catch (error) {
      throw new MalformedMessageError(`Expected a JSON scorer blend in the shard search request: ${(error as Error).message}`);
    }
  }
  return request;
}

export function encodeSearchReply(results: SearchResults, applied: number): Uint8Array {
  const { k, queries: nq } = results;
  const idsAt = align8(replyHeader + nq * 4);
  const out = new Uint8Array(idsAt + nq * k * 12);
  const view = new DataView(out.buffer);
  out.set(replyMagic, 0);
  out[4] = version;
  view.setUint32(8, k, true);
  view.setUint32(12, nq, true);
  view.setFloat64(16, applied, true);
  new Uint32Array(out.buffer, replyHeader, nq).set(results.counts);
  new BigInt64Array(out.buffer, idsAt, nq * k).set(results.ids);
  new Float32Array(out.buffer, idsAt + nq * k * 8, nq * k).set(results.scores);
  return out;
}

export function encodeErrorReply(error: unknown): Uint8Array {
  const body = error instanceof CangenError ? { code: error.code, message: error.message } : { code: 'ERR_INTERNAL', message: String((error as Error)?.message ?? error) };
  const json = new TextEncoder().encode(JSON.stringify(body));
  const out = new Uint8Array(replyHeader + json.length);
  out.set(replyMagic, 0);
  out[4] = version;
  out[5] = 1;
  out.set(json, replyHeader);
  return out;
}

/** Decodes a reply; an error reply throws a ClusterError carrying the replica's code and message. */
export function decodeSearchReply(bytes: Uint8Array, metric: Metric): ShardSearchReply {
  const view = checkMagic(bytes, replyMagic, 'shard search reply', replyHeader);
  if (bytes[5] === 1) {
    const { code, message } = JSON.parse(new TextDecoder().decode(bytes.subarray(replyHeader))) as { code: string; message: string };
    throw new ClusterError('ERR_CLUSTER', `The replica answered ${code}: ${message}`);
  }
  const k = view.getUint32(8, true);
  const nq = view.getUint32(12, true);
  const idsAt = align8(replyHeader + nq * 4);
  if (bytes.length !== idsAt + nq * k * 12) throw new MalformedMessageError(`Expected ${idsAt + nq * k * 12} bytes for a reply of ${nq} x ${k} but received ${bytes.length}`);
  const copy = new Uint8Array(bytes); // a private, aligned copy (a Buffer's slice() would be a view)
  const results = new SearchResults(k, metric, {
    counts: new Uint32Array(copy.buffer, replyHeader, nq),
    ids: new BigInt64Array(copy.buffer, idsAt, nq * k),
    scores: new Float32Array(copy.buffer, idsAt + nq * k * 8, nq * k),
  });
  return { results, applied: view.getFloat64(16, true) };
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
