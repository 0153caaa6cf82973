/** JSON schemas of the HTTP API: every body is checked before a handler runs. */

/**
 * A regular expression source matching the decimal integers from 0 to `max` (leading zeros allowed
 * up to max's digit count): shorter numbers, or at each digit of max a smaller digit followed by
 * anything, or max itself. A JSON schema has no 64-bit integer type; this keeps 2^63 and above out.
 */
export function decimalAtMost(max: bigint): string {
  const digits = max.toString();
  const n = digits.length;
  const options: string[] = n > 1 ? [`[0-9]{1,${n - 1}}`] : [];
  for (let i = 0; i < n; i++) {
    const d = Number(digits[i]);
    if (d > 0) options.push(`${digits.slice(0, i)}[0-${d - 1}]${i + 1 < n ? `[0-9]{${n - i - 1}}` : ''}`);
  }
  options.push(digits);
  return `^(?:${options.join('|')})$`;
}

/** Ad ids: 0 to 2^63-1, as a string of digits or a JSON integer up to 2^53 (the pattern, and the schema of one id). */
export const adIdPattern = decimalAtMost((1n << 63n) - 1n);
export const adId = { anyOf: [{ type: 'string', pattern: adIdPattern }, { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }] };
const vector = (dim: number) => ({ type: 'array', items: { type: 'number' }, minItems: dim, maxItems: dim });
/** A name (id, geo, category, advertiser, scenario): no control character, so none can pose as a separator. */
const name = (maxLength: number, minLength = 0) => ({ type: 'string', minLength, maxLength, pattern: '^[^\\u0000-\\u001F\\u007F]*$' });
/** Free text (query text, titles): tabs and line breaks allowed, other control characters not. */
const text = (maxLength: number) => ({ type: 'string', maxLength, pattern: '^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$' });
const names = (maxItems: number) => ({ type: 'array', items: name(256), maxItems });

/** What one retrieve request may ask for (ServiceConfig's max* settings). */
export interface RetrieveLimits {
  maxK: number;
  maxDeadlineMs: number;
  maxTextLength: number;
  maxFilterNames: number;
  maxExcludeAds: number;
  /** Events in a request's own history (the events kept per user). */
  historyLength: number;
}
const errorReply = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

export function retrieveSchema(dim: number, limits: RetrieveLimits) {
  return {
    body: {
      type: 'object',
      required: ['userId', 'scenario'],
      additionalProperties: false,
      properties: {
        userId: name(256, 1),
        scenario: name(64, 1),
        k: { type: 'integer', minimum: 1, maximum: limits.maxK },
        deadlineMs: { type: 'integer', minimum: 1, maximum: limits.maxDeadlineMs },
        // Read-your-writes: the `seq` a PUT /v1/ads answered with.
        readAfter: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        features: {
          type: 'object',
          additionalProperties: false,
          properties: {
            embedding: vector(dim), shortTerm: vector(dim), text: text(limits.maxTextLength), geo: name(64), categories: names(limits.maxFilterNames),
            history: {
              type: 'object',
              required: ['items'],
              additionalProperties: false,
              properties: {
                items: { type: 'array', items: { anyOf: [name(256), { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }] }, maxItems: limits.historyLength },
                actions: { type: 'array', items: name(64), maxItems: limits.historyLength },
                times: { type: 'array', items: { type: 'number', minimum: 0 }, maxItems: limits.historyLength },
              },
            },
          },
        },
        eligibility: {
          type: 'object',
          additionalProperties: false,
          properties: { categories: names(limits.maxFilterNames), excludeAdvertisers: names(limits.maxFilterNames), excludeAds: { type: 'array', items: adId, maxItems: limits.maxExcludeAds } },
        },
      },
    },
    response: {
      200: {
        type: 'object',
        properties: {
          requestId: { type: 'string' },
          scenario: { type: 'string' },
          k: { type: 'integer' },
          ms: { type: 'number' },
          quotas: { type: 'object', additionalProperties: { type: 'integer' } },
          candidates: {
            type: 'array',
            items: { type: 'object', properties: { adId: { type: 'string' }, source: { type: 'string' }, score: { type: 'number' }, rank: { type: 'integer' } } },
          },
          generators: {
            type: 'array',
            items: {
              type: 'object',
              properties: { name: { type: 'string' }, status: { type: 'string' }, quota: { type: 'integer' }, returned: { type: 'integer' }, kept: { type: 'integer' }, ms: { type: 'number' }, error: { type: 'string' }, partial: { type: 'boolean' }, missingShards: { type: 'array', items: { type: 'integer' } } },
            },
          },
        },
      },
      '4xx': errorReply,
      '5xx': errorReply,
    },
  };
}

/** A body `{ events: [...] }` whose events are objects with these fields and no others. */
function eventBatch(required: string[], properties: Record<string, unknown>, bounds: { minItems?: number; maxItems?: number }) {
  return {
    body: {
      type: 'object',
      required: ['events'],
      additionalProperties: false,
      properties: { events: { type: 'array', ...bounds, items: { type: 'object', required, additionalProperties: false, properties } } },
    },
  };
}

export function feedbackSchema(maxEvents: number) {
  return eventBatch(['requestId', 'adId', 'type'], { requestId: name(160), adId, type: { enum: ['impression', 'click', 'conversion'] } }, { maxItems: maxEvents });
}

export function upsertSchema(dim: number) {
  return {
    body: {
      type: 'object',
      required: ['ads'],
      additionalProperties: false,
      properties: {
        ads: {
          type: 'array',
          minItems: 1,
          maxItems: 10000,
          items: {
            type: 'object',
            required: ['id'],
            additionalProperties: false,
            properties: {
              id: adId,
              embedding: vector(dim),
              title: text(2048),
              category: name(256),
              advertiserId: name(256),
              campaignId: name(256),
              geos: names(1000),
              active: { type: 'boolean' },
              budgetLeft: { type: 'number', minimum: 0 },
            },
          },
        },
      },
    },
  };
}

export const deleteSchema = {
  body: { type: 'object', required: ['ids'], additionalProperties: false, properties: { ids: { type: 'array', items: adId, minItems: 1, maxItems: 100000 } } },
};

/** User events: the batch size is checked by the route (413 past eventsMaxBatch), each event here. */
export const eventsSchema = eventBatch(
  ['userId', 'item', 'time'],
  {
    userId: name(256, 1),
    item: { anyOf: [name(256, 1), { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }] },
    action: name(64),
    time: { type: 'number', minimum: 0 },
  },
  { minItems: 1 },
);

export const historySchema = {
  params: { type: 'object', required: ['userId'], properties: { userId: name(256, 1) } },
  // Query strings are text (no type coercion here): a limit of 1 to 6 digits.
  querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' } } },
};
