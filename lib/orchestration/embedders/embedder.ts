/** Where content embeddings come from: a model behind HTTP in production, hashed n-grams offline. */
export interface Embedder {
  /** Output dimension (known after the first call for a remote model without a fixed one). */
  readonly dim: number;
  readonly name: string;
  /** n texts to an n x dim row-major matrix. */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array>;
}
