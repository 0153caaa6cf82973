/**
 * JSON schemas of the router's HTTP API (router-http.ts). The dimension is the shard map's, which
 * the router may learn only after it starts, so a vector's length is checked by the handler and
 * ClusterRouter / CorpusLog rather than here; everything else is checked before a handler runs.
 */
import { adId } from '../service/schemas';

/** Per search request: queries and results per query (nq x k results are at most 640,000). */
export const routerLimits = { maxQueries: 64, maxK: 10_000, maxDeadlineMs: 60_000, maxAdsPerWrite: 10_000, maxIdsPerRemove: 100_000, maxFilterValues: 100_000 };

const vector = { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 65_536 };
const uint32 = { type: 'integer', minimum: 0, maximum: 0xffff_ffff };
const uint32s = { type: 'array', items: uint32, maxItems: routerLimits.maxFilterValues };
const budget = { enum: ['available', 'limited', 'exhausted'] };
const ms = (minimum: number) => ({ type: 'integer', minimum, maximum: routerLimits.maxDeadlineMs });

/** An ad's attributes as AdIndex takes them (AdAttributes): numbers, interned by the writer. */
const attributes = { active: { type: 'boolean' }, budget, advertiser: uint32, campaign: uint32, category: uint32, geo: uint32 };

/** A LogPosition as a write returned it: shard -> log sequence. */
const position = {
  type: 'object',
  additionalProperties: false,
  patternProperties: { '^(0|[1-9][0-9]{0,4})$': { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
};

export const searchSchema = {
  body: {
    type: 'object',
    required: ['queries', 'k'],
    additionalProperties: false,
    properties: {
      queries: { type: 'array', items: vector, minItems: 1, maxItems: routerLimits.maxQueries },
      k: { type: 'integer', minimum: 1, maximum: routerLimits.maxK },
      deadlineMs: ms(1),
      hedgeAfterMs: ms(0),
      readAfter: position,
      // Rank with the replicas' learned scorer (cangen shard --scorer): queries are then users of its userDim.
      scorer: {
        type: 'object',
        additionalProperties: false,
        properties: {
          scenario: { type: 'string', minLength: 1, maxLength: 64 },
          weights: { type: 'object', maxProperties: 64, additionalProperties: { type: 'number' } },
        },
      },
      filter: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ids: { type: 'array', items: adId, maxItems: routerLimits.maxFilterValues },
          active: { type: 'boolean' },
          budget: { type: 'array', items: budget, maxItems: 3 },
          advertisers: uint32s, excludeAdvertisers: uint32s, campaigns: uint32s, categories: uint32s, geos: uint32s,
        },
      },
    },
  },
};

const adsBody = (required: string[], properties: Record<string, unknown>) => ({
  body: {
    type: 'object',
    required: ['ads'],
    additionalProperties: false,
    properties: {
      ads: { type: 'array', minItems: 1, maxItems: routerLimits.maxAdsPerWrite, items: { type: 'object', required, additionalProperties: false, properties } },
    },
  },
});

export const upsertSchema = adsBody(['id', 'embedding'], { id: adId, embedding: vector, ...attributes });
export const attributesSchema = adsBody(['id'], { id: adId, ...attributes });
export const removeSchema = {
  body: { type: 'object', required: ['ids'], additionalProperties: false, properties: { ids: { type: 'array', items: adId, minItems: 1, maxItems: routerLimits.maxIdsPerRemove } } },
};
