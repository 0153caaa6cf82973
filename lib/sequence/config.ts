/**
 * config.json of a trained user model (format "cangen-user-model", version 1; docs/TRAINING.md)
 * and the tensors, with their shapes and dtypes, that its architecture implies.
 */
import { ModelFormatError } from '../scorer/errors';

export type SequenceModelKind = 'hstu' | 'sasrec';

export interface SequenceConfig {
  model: SequenceModelKind;
  dim: number;
  layers: number;
  heads: number;
  maxLen: number;
  /** > 0: the short-term encoder attends only to this many most recent events. */
  shortWindow: number;
  /** The long-term pooled interest and its gated fusion with the short-term state. */
  longTerm: boolean;
  /** Query embeddings per user. */
  interests: number;
  timeBuckets: number;
  /** HSTU: the time-gap bias is part of the model. */
  useTimes: boolean;
  sideInfo: boolean;
  head: 'dot' | 'mol';
  numItems: number;
  numActions: number;
  numFeatures: number;
  /** Queries (and item_embeddings) are L2-normalised for the dot product. */
  normalizeQuery: boolean;
  /**
   * A multi-task model's heads (labels, or label@scenario): the encoder's output is the shared
   * user state and OUT/scorer holds one projection per head (docs/TRAINING.md). Empty otherwise.
   */
  headNames: string[];
}

export const sequenceFormat = 'cangen-user-model';
export const sequenceFormatVersion = 1;

export function parseSequenceConfig(text: string, source: string): SequenceConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ModelFormatError(`${source}: not JSON (${(error as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelFormatError(`${source}: not a JSON object`);
  const c = raw as Record<string, unknown>;
  if (c.format !== sequenceFormat || c.version !== sequenceFormatVersion) {
    throw new ModelFormatError(
      `${source}: format ${JSON.stringify(c.format)} version ${JSON.stringify(c.version)}, expected "${sequenceFormat}" version ${sequenceFormatVersion} (a model exported by cangen's trainer)`,
    );
  }
  const field = <T>(name: string, check: (v: unknown) => v is T, expected: string, fallback?: T): T => {
    const value = c[name] ?? fallback;
    if (!check(value)) throw new ModelFormatError(`${source}: expected ${expected} for "${name}" but found ${JSON.stringify(c[name])}`);
    return value;
  };
  const count = (min: number) => (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v < 2 ** 31 - 1;
  const bool = (v: unknown): v is boolean => typeof v === 'boolean';
  const config: SequenceConfig = {
    model: field('model', (v): v is SequenceModelKind => v === 'hstu' || v === 'sasrec', '"hstu" or "sasrec"'),
    dim: field('dim', count(1), 'a positive integer'),
    layers: field('layers', count(1), 'a positive integer'),
    heads: field('heads', count(1), 'a positive integer'),
    maxLen: field('maxLen', count(1), 'a positive integer'),
    shortWindow: field('shortWindow', count(0), 'a non-negative integer', 0),
    longTerm: field('longTerm', bool, 'true or false', false),
    interests: field('interests', count(1), 'a positive integer', 1),
    timeBuckets: field('timeBuckets', count(0), 'a non-negative integer', 64),
    useTimes: field('useTimes', bool, 'true or false', true),
    sideInfo: field('sideInfo', bool, 'true or false', true),
    head: field('head', (v): v is 'dot' | 'mol' => v === 'dot' || v === 'mol', '"dot" or "mol"'),
    numItems: field('numItems', count(0), 'a non-negative integer'),
    numActions: field('numActions', count(0), 'a non-negative integer', 0),
    numFeatures: field('numFeatures', count(0), 'a non-negative integer', 0),
    normalizeQuery: field('normalizeQuery', bool, 'true or false'),
    headNames: field('headNames', (v): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0), 'a list of head names', []),
  };
  if (config.dim % config.heads !== 0) throw new ModelFormatError(`${source}: dim ${config.dim} is not divisible by heads ${config.heads}`);
  return config;
}

/** Tensors of the head that the scorer directory (OUT/scorer) serves; the encoder skips them. */
export function isHeadTensor(c: SequenceConfig, name: string): boolean {
  return (c.head === 'mol' && name.startsWith('mol.')) || (c.headNames.length > 0 && name.startsWith('task_heads.'));
}

export interface ExpectedTensor {
  shape: number[];
  dtype: 'F32' | 'I64';
}

/**
 * Every tensor the architecture has, by name (the head's `mol.*` tensors are the scorer's and
 * are checked by LearnedScorer.load on OUT/scorer). `featuresPerItem`: the second dimension of
 * items.feature_ids, which only the file says.
 */
export function expectedSequenceTensors(c: SequenceConfig, featuresPerItem: number): Map<string, ExpectedTensor> {
  const d = c.dim;
  const out = new Map<string, ExpectedTensor>();
  const f32 = (name: string, ...shape: number[]) => out.set(name, { shape, dtype: 'F32' });
  const linear = (name: string, inputs: number, outputs: number) => {
    f32(`${name}.weight`, outputs, inputs);
    f32(`${name}.bias`, outputs);
  };
  f32('items.id.weight', c.numItems + 1, d);
  if (c.sideInfo && c.numFeatures > 0) {
    f32('items.features.weight', c.numFeatures + 1, d);
    out.set('items.feature_ids', { shape: [c.numItems + 1, featuresPerItem], dtype: 'I64' });
  }
  f32('item_embeddings', c.numItems + 1, d);
  if (c.numActions > 0) f32('actions.weight', c.numActions + 1, d);
  for (let l = 0; l < c.layers; l++) {
    if (c.model === 'hstu') {
      const p = `encoder.layers.${l}`;
      linear(`${p}.uvqk`, d, 4 * d);
      linear(`${p}.out`, d, d);
      f32(`${p}.bias.position`, c.maxLen);
      f32(`${p}.bias.time`, c.timeBuckets + 1);
    } else {
      const p = `encoder.blocks.${l}`;
      f32(`${p}.attn_norm.weight`, d);
      f32(`${p}.attn_norm.bias`, d);
      linear(`${p}.attn.qkv`, d, 3 * d);
      linear(`${p}.attn.out`, d, d);
      f32(`${p}.ffn_norm.weight`, d);
      f32(`${p}.ffn_norm.bias`, d);
      linear(`${p}.ffn_in`, d, 4 * d);
      linear(`${p}.ffn_out`, 4 * d, d);
    }
  }
  if (c.model === 'sasrec') f32('encoder.position.weight', c.maxLen, d);
  f32('encoder.final_norm.weight', d);
  f32('encoder.final_norm.bias', d);
  if (c.longTerm) {
    f32('long.score.weight', 1, d);
    linear('long.proj', d, d);
    linear('fuse.gate', 2 * d, d);
  }
  if (c.interests > 1) linear('interests', d, c.interests * d);
  return out;
}
