/**
 * The catalog stream's messages: one service-level write (AdCorpus's CorpusWrite) each, names as
 * strings, so that every router interns them itself in stream order. JSON, with ids as decimal
 * strings, vectors as base64 of their little-endian float32 bytes and budgets that may be
 * unlimited as "Infinity". Decoding checks every field: a message no router can apply is refused
 * the same way by all of them.
 */
import type { CorpusWrite } from '../corpus/ad-corpus';
import type { AdInput } from '../corpus/ad-store';
import { MalformedMessageError } from './errors';

const version = 1;

type WireNumber = number | 'Infinity' | '-Infinity';

interface WireAd {
  id: string;
  advertiserId?: string;
  campaignId?: string;
  category?: string;
  geos?: string[];
  active?: boolean;
  budgetLeft?: WireNumber;
  title?: string;
}

interface WireWrite {
  v: number;
  upserts?: { ad: WireAd; embedding?: string; content?: string | null }[];
  removes?: string[];
  campaigns?: { campaignId: string; budget: WireNumber }[];
  spends?: { id: string; amount: WireNumber }[];
}

export function encodeCatalogWrite(write: CorpusWrite): Uint8Array {
  const wire: WireWrite = { v: version };
  if (write.upserts?.length) {
    wire.upserts = write.upserts.map((u) => ({
      ad: wireAd(u.ad),
      ...(u.embedding ? { embedding: floats(u.embedding) } : {}),
      ...(u.content !== undefined ? { content: u.content === null ? null : floats(u.content) } : {}),
    }));
  }
  if (write.removes?.length) wire.removes = write.removes.map(String);
  if (write.campaigns?.length) wire.campaigns = write.campaigns.map((c) => ({ campaignId: c.campaignId, budget: wireNumber(c.budget) }));
  if (write.spends?.length) wire.spends = write.spends.map((s) => ({ id: String(s.id), amount: wireNumber(s.amount) }));
  return new TextEncoder().encode(JSON.stringify(wire));
}

/** The write a catalog message carries; MalformedMessageError when it is not one this version can apply. */
export function decodeCatalogWrite(bytes: Uint8Array): CorpusWrite {
  let wire: WireWrite;
  try {
    wire = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as WireWrite;
  } catch (error) {
    throw malformed(`not UTF-8 JSON (${(error as Error).message})`);
  }
  if (!isObject(wire)) throw malformed('not a JSON object');
  if (wire.v !== version) throw malformed(`version ${String(wire.v)}, this version reads ${version}`);
  return {
    upserts: list(wire.upserts, 'upserts').map((u, i) => {
      if (!isObject(u)) throw malformed(`upserts[${i}] is not an object`);
      return {
        ad: readAd(u.ad, `upserts[${i}].ad`),
        ...(u.embedding !== undefined ? { embedding: readFloats(u.embedding, `upserts[${i}].embedding`) } : {}),
        ...(u.content !== undefined ? { content: u.content === null ? null : readFloats(u.content, `upserts[${i}].content`) } : {}),
      };
    }),
    removes: list(wire.removes, 'removes').map((id, i) => readId(id, `removes[${i}]`)),
    campaigns: list(wire.campaigns, 'campaigns').map((c, i) => {
      if (!isObject(c) || typeof c.campaignId !== 'string') throw malformed(`campaigns[${i}] has no campaignId string`);
      return { campaignId: c.campaignId, budget: readNumber(c.budget, `campaigns[${i}].budget`) };
    }),
    spends: list(wire.spends, 'spends').map((s, i) => {
      if (!isObject(s)) throw malformed(`spends[${i}] is not an object`);
      return { id: readId(s.id, `spends[${i}].id`), amount: readNumber(s.amount, `spends[${i}].amount`) };
    }),
  };
}

function wireAd(ad: AdInput): WireAd {
  const out: WireAd = { id: String(ad.id) };
  if (ad.advertiserId !== undefined) out.advertiserId = ad.advertiserId;
  if (ad.campaignId !== undefined) out.campaignId = ad.campaignId;
  if (ad.category !== undefined) out.category = ad.category;
  if (ad.geos !== undefined) out.geos = [...ad.geos];
  if (ad.active !== undefined) out.active = ad.active;
  if (ad.budgetLeft !== undefined) out.budgetLeft = wireNumber(ad.budgetLeft);
  if (ad.title !== undefined) out.title = ad.title;
  return out;
}

function readAd(value: unknown, where: string): AdInput {
  if (!isObject(value)) throw malformed(`${where} is not an object`);
  const ad: AdInput = { id: readId(value.id, `${where}.id`) };
  for (const key of ['advertiserId', 'campaignId', 'category', 'title'] as const) {
    if (value[key] === undefined) continue;
    if (typeof value[key] !== 'string') throw malformed(`${where}.${key} is not a string`);
    ad[key] = value[key] as string;
  }
  if (value.geos !== undefined) {
    if (!Array.isArray(value.geos) || !value.geos.every((g) => typeof g === 'string')) throw malformed(`${where}.geos is not a list of strings`);
    ad.geos = value.geos as string[];
  }
  if (value.active !== undefined) {
    if (typeof value.active !== 'boolean') throw malformed(`${where}.active is not a boolean`);
    ad.active = value.active;
  }
  if (value.budgetLeft !== undefined) ad.budgetLeft = readNumber(value.budgetLeft, `${where}.budgetLeft`);
  return ad;
}

function wireNumber(x: number): WireNumber {
  return Number.isFinite(x) ? x : x > 0 ? 'Infinity' : '-Infinity';
}

function readNumber(value: unknown, where: string): number {
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(`${where} is not a number`);
  return value;
}

function readId(value: unknown, where: string): bigint {
  if (typeof value !== 'string' || !/^\d{1,19}$/.test(value) || BigInt(value) > 0x7fffffffffffffffn) throw malformed(`${where} is not an ad id (a decimal string of a non-negative 64-bit integer)`);
  return BigInt(value);
}

function floats(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

function readFloats(value: unknown, where: string): Float32Array {
  if (typeof value !== 'string') throw malformed(`${where} is not base64`);
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length % 4 !== 0) throw malformed(`${where} is ${bytes.length} bytes, not a whole number of float32 values`);
  // Copied into a fresh, aligned buffer (Buffer's pool offsets need not be multiples of 4).
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  if (!out.every(Number.isFinite)) throw malformed(`${where} holds a value that is not finite`);
  return out;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw malformed(`${where} is not a list`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(why: string): MalformedMessageError {
  return new MalformedMessageError(`A catalog message could not be read: ${why}`);
}
