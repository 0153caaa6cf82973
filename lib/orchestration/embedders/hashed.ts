/**
 * A local embedder with no model and no network: words, word bigrams and character trigrams are
 * hashed into `dim` signed buckets and the vector is L2-normalised. Texts that share words or
 * word pieces get a high cosine, which is what cold-start matching of titles needs.
 */
import { integerIn, knownOptions } from '../../validate';
import type { Embedder } from './embedder';

export interface HashedEmbedderOptions {
  /** Output dimension (default 256). */
  dim?: number;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

export class HashedNgramEmbedder implements Embedder {
  readonly dim: number;
  readonly name = 'hashed-ngrams';

  constructor(options: HashedEmbedderOptions = {}) {
    const o = knownOptions(options, 'HashedNgramEmbedder options', ['dim']);
    this.dim = integerIn(o.dim ?? 256, 'HashedNgramEmbedder options.dim', 8, 65536);
  }

  /** One text into `out` (length dim); zero when the text has no word. */
  embedOne(text: string, out: Float32Array = new Float32Array(this.dim)): Float32Array {
    const words = tokenize(text);
    const add = (feature: string, weight: number) => {
      const h = fnv1a(feature);
      out[h % this.dim]! += h & 0x80000000 ? -weight : weight;
    };
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      add(`w:${w}`, 1);
      if (i > 0) add(`b:${words[i - 1]} ${w}`, 0.7);
      const padded = `^${w}$`;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.3);
    }
    let norm = 0;
    for (let j = 0; j < out.length; j++) norm += out[j]! * out[j]!;
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < out.length; j++) out[j]! *= inv;
    }
    return out;
  }

  async embed(texts: readonly string[]): Promise<Float32Array> {
    const out = new Float32Array(texts.length * this.dim);
    texts.forEach((t, i) => this.embedOne(t, out.subarray(i * this.dim, (i + 1) * this.dim)));
    return out;
  }
}
