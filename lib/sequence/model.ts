/**
 * Reading a trained user model's directory (config.json, model.safetensors, items.txt,
 * actions.txt) and checking every tensor's name, shape, dtype and values against the config.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFormatError } from '../scorer/errors';
import { parseSafetensors, type Tensor } from '../scorer/safetensors';
import type { NativeSequenceModel } from '../native';
import { expectedSequenceTensors, isHeadTensor, parseSequenceConfig, type SequenceConfig } from './config';

export interface LoadedSequenceModel {
  config: SequenceConfig;
  tensors: Map<string, Tensor>;
  /** Original item id of model row i + 1 (row 0 is padding). */
  itemIds: string[];
  /** Action name of action row i + 1 (row 0: none). */
  actionNames: string[];
}

/** Float32 holds every integer up to 2^24 exactly: feature ids beyond it would not survive the reader. */
const maxExactInteger = 2 ** 24;

async function readOrExplain(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFormatError(`Cannot read ${path}${code === 'ENOENT' ? `: no such file (${what})` : `: ${(error as Error).message}`}`);
  }
}

/** The lines of a list file (one entry a line, trailing newline optional). */
function lines(text: string): string[] {
  const all = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all;
}

export async function readSequenceModel(dir: string): Promise<LoadedSequenceModel> {
  const layout = 'an exported user model holds config.json, model.safetensors and items.txt (docs/TRAINING.md)';
  const configPath = join(dir, 'config.json');
  const weightsPath = join(dir, 'model.safetensors');
  const itemsPath = join(dir, 'items.txt');
  // The config first: a directory that is not a model at all is reported by it, whichever read fails first.
  const configText = await readOrExplain(configPath, layout);
  const [weights, itemsText] = await Promise.all([readOrExplain(weightsPath, layout), readOrExplain(itemsPath, layout)]);
  const config = parseSequenceConfig(configText.toString('utf8'), configPath);
  const tensors = parseSafetensors(weights, weightsPath);
  checkSequenceTensors(config, tensors, weightsPath);
  const itemIds = lines(itemsText.toString('utf8'));
  if (itemIds.length !== config.numItems) {
    throw new ModelFormatError(`${itemsPath}: ${itemIds.length} item ids but config.json has numItems ${config.numItems} (one id a line, row 1 first)`);
  }
  const seen = new Set<string>();
  for (const [i, id] of itemIds.entries()) {
    if (seen.has(id)) throw new ModelFormatError(`${itemsPath}:${i + 1}: item id '${id}' is listed twice`);
    seen.add(id);
  }
  let actionNames: string[] = [];
  if (config.numActions > 0) {
    const actionsPath = join(dir, 'actions.txt');
    actionNames = lines((await readOrExplain(actionsPath, `config.json has numActions ${config.numActions}`)).toString('utf8'));
    if (actionNames.length !== config.numActions) {
      throw new ModelFormatError(`${actionsPath}: ${actionNames.length} action names but config.json has numActions ${config.numActions}`);
    }
  }
  return { config, tensors, itemIds, actionNames };
}

/** Every expected tensor present with its shape, dtype and only finite values (feature ids in range); nothing unexpected. */
export function checkSequenceTensors(config: SequenceConfig, tensors: Map<string, Tensor>, source: string): void {
  const featureIds = tensors.get('items.feature_ids');
  const expected = expectedSequenceTensors(config, featureIds?.shape[1] ?? 0);
  for (const [name, { shape, dtype }] of expected) {
    const tensor = tensors.get(name);
    if (!tensor) throw new ModelFormatError(`${source}: missing tensor '${name}' of shape [${shape.join(', ')}] (config.json implies it)`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((size, i) => size !== shape[i])) {
      throw new ModelFormatError(`${source}: tensor '${name}' has shape [${tensor.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
    }
    if (tensor.dtype !== dtype) throw new ModelFormatError(`${source}: tensor '${name}' has dtype ${tensor.dtype}, expected ${dtype}`);
    const data = tensor.data;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new ModelFormatError(`${source}: tensor '${name}' holds ${data[i]} at flat index ${i}; weights must be finite`);
    }
  }
  if (featureIds) {
    const features = config.numFeatures + 1;
    if (features > maxExactInteger) throw new ModelFormatError(`${source}: ${config.numFeatures} item features; cangen reads up to ${maxExactInteger - 1}`);
    const bad = featureIds.data.findIndex((v) => !(Number.isInteger(v) && v >= 0 && v < features));
    if (bad >= 0) {
      throw new ModelFormatError(`${source}: tensor 'items.feature_ids' holds ${featureIds.data[bad]} at flat index ${bad}, outside [0, ${config.numFeatures}]`);
    }
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name) && !isHeadTensor(config, name)) {
      throw new ModelFormatError(`${source}: unexpected tensor '${name}' for this config.json (model '${config.model}', ${config.layers} layers)`);
    }
  }
}

export function toNativeSequenceModel({ config, tensors }: LoadedSequenceModel): NativeSequenceModel {
  const data: Record<string, Float32Array> = {};
  for (const [name, tensor] of tensors) {
    if (name !== 'items.feature_ids' && name !== 'item_embeddings' && !isHeadTensor(config, name)) data[name] = tensor.data;
  }
  const model: NativeSequenceModel = {
    kind: config.model,
    dim: config.dim,
    heads: config.heads,
    layers: config.layers,
    maxLen: config.maxLen,
    shortWindow: config.shortWindow,
    timeBuckets: config.timeBuckets,
    useTimes: config.useTimes,
    longTerm: config.longTerm,
    interests: config.interests,
    normalizeQuery: config.normalizeQuery,
    numItems: config.numItems,
    numActions: config.numActions,
    tensors: data,
  };
  const featureIds = tensors.get('items.feature_ids');
  if (featureIds) {
    model.featureIds = Int32Array.from(featureIds.data);
    model.featuresPerItem = featureIds.shape[1]!;
  }
  return model;
}
