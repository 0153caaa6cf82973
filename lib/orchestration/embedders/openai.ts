/**
 * An OpenAI-compatible embeddings client (POST {baseUrl}/embeddings with { model, input }), as
 * served by OpenAI, vLLM, text-embeddings-inference, Ollama and others. Batches inputs, checks the
 * reply's shape, retries once on 429 and 5xx, and turns every failure into an EmbedderError.
 */
import { integerIn, invalid, knownOptions } from '../../validate';
import { EmbedderError } from '../errors';
import type { Embedder } from './embedder';

export interface OpenAIEmbedderOptions {
  /** For example 'https://api.openai.com/v1' or 'http://127.0.0.1:8080/v1'. */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Expected output dimension; when omitted it is taken from the first reply. */
  dim?: number;
  /** Ask the model for this many dimensions (the `dimensions` request field). */
  requestDimensions?: boolean;
  /** Texts per HTTP request (default 128). */
  batchSize?: number;
  /** Per HTTP request (default 10,000 ms). */
  timeoutMs?: number;
  /** Retries on 429 and 5xx (default 1). */
  retries?: number;
}

const optionNames = ['baseUrl', 'model', 'apiKey', 'dim', 'requestDimensions', 'batchSize', 'timeoutMs', 'retries'];

export class OpenAIEmbedder implements Embedder {
  readonly name: string;
  private dimension: number | undefined;
  private readonly url: string;
  private readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly requestDimensions: boolean;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(options: OpenAIEmbedderOptions) {
    const o = knownOptions(options, 'OpenAIEmbedder options', optionNames);
    if (typeof o.baseUrl !== 'string' || !/^https?:\/\//.test(o.baseUrl)) throw invalid('an http(s) URL', 'OpenAIEmbedder options.baseUrl', o.baseUrl);
    if (typeof o.model !== 'string' || o.model === '') throw invalid('a model name', 'OpenAIEmbedder options.model', o.model);
    this.url = `${o.baseUrl.replace(/\/+$/, '')}/embeddings`;
    this.model = o.model;
    this.name = `openai:${o.model}`;
    this.apiKey = typeof o.apiKey === 'string' ? o.apiKey : undefined;
    this.dimension = o.dim === undefined ? undefined : integerIn(o.dim, 'OpenAIEmbedder options.dim', 1, 65536);
    this.requestDimensions = o.requestDimensions === true;
    this.batchSize = integerIn(o.batchSize ?? 128, 'OpenAIEmbedder options.batchSize', 1, 4096);
    this.timeoutMs = integerIn(o.timeoutMs ?? 10_000, 'OpenAIEmbedder options.timeoutMs', 1, 600_000);
    this.retries = integerIn(o.retries ?? 1, 'OpenAIEmbedder options.retries', 0, 10);
  }

  get dim(): number {
    if (this.dimension === undefined) throw new EmbedderError(`The dimension of ${this.name} is known after its first reply; pass { dim } to know it up front`);
    return this.dimension;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += this.batchSize) {
      parts.push(await this.embedBatch(texts.slice(start, start + this.batchSize), signal));
    }
    const out = new Float32Array(texts.length * (this.dimension ?? 0));
    let offset = 0;
    for (const p of parts) {
      out.set(p, offset);
      offset += p.length;
    }
    return out;
  }

  private async embedBatch(input: readonly string[], signal?: AbortSignal): Promise<Float32Array> {
    const body: Record<string, unknown> = { model: this.model, input, encoding_format: 'float' };
    if (this.requestDimensions && this.dimension) body.dimensions = this.dimension;
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      let response: Response;
      try {
        response = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (error) {
        const why = timeout.aborted ? `no reply within ${this.timeoutMs} ms` : (error as Error).message;
        throw new EmbedderError(`Embedding request to ${this.url} failed: ${why}`);
      }
      if ((response.status === 429 || response.status >= 500) && attempt < this.retries) {
        await response.body?.cancel();
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        continue;
      }
      const text = await response.text();
      if (!response.ok) {
        let detail = text.slice(0, 200);
        try {
          detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? detail;
        } catch {
          // not JSON: keep the raw text
        }
        throw new EmbedderError(`Embedding request to ${this.url} returned HTTP ${response.status}: ${detail}`, response.status);
      }
      return this.parse(text, input.length);
    }
  }

  private parse(text: string, n: number): Float32Array {
    let reply: { data?: { embedding?: unknown; index?: unknown }[] };
    try {
      reply = JSON.parse(text) as typeof reply;
    } catch {
      throw new EmbedderError(`Expected a JSON reply from ${this.url} but received: ${text.slice(0, 80)}`);
    }
    const data = reply.data;
    if (!Array.isArray(data) || data.length !== n) {
      throw new EmbedderError(`Expected ${n} embeddings in data from ${this.url} but received ${Array.isArray(data) ? data.length : typeof data}`);
    }
    const first = data[0]?.embedding;
    this.dimension ??= Array.isArray(first) ? first.length : 0;
    const dim = this.dimension;
    const out = new Float32Array(n * dim);
    data.forEach((item, position) => {
      const index = typeof item.index === 'number' ? item.index : position;
      const e = item.embedding;
      if (!Array.isArray(e) || e.length !== dim || index < 0 || index >= n) {
        throw new EmbedderError(`Expected an embedding of ${dim} numbers at data[${position}] from ${this.url} but received ${Array.isArray(e) ? `${e.length} values` : typeof e}`);
      }
      for (let j = 0; j < dim; j++) {
        const v = e[j];
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new EmbedderError(`Expected finite numbers at data[${position}].embedding[${j}] from ${this.url} but received ${String(v)}`);
        out[index * dim + j] = v;
      }
    });
    return out;
  }
}
