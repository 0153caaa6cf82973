/**
 * Loading a model directory (config.json + model.safetensors) into the shape the addon takes,
 * checking every tensor's name, shape and values against the config first.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedTensors, parseConfig, type ScorerConfig } from './config';
import { ModelFormatError } from './errors';
import type { NativeScorerModel } from '../native';
import { parseSafetensors, type Tensor } from './safetensors';

export interface LoadedModel {
  config: ScorerConfig;
  tensors: Map<string, Tensor>;
}

export async function readModelDirectory(dir: string): Promise<LoadedModel> {
  const configPath = join(dir, 'config.json');
  const weightsPath = join(dir, 'model.safetensors');
  const read = async (path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ModelFormatError(`Cannot read ${path}${code === 'ENOENT' ? ': no such file (a model directory holds config.json and model.safetensors)' : `: ${(error as Error).message}`}`);
    }
  };
  const [configText, weights] = await Promise.all([read(configPath), read(weightsPath)]);
  const config = parseConfig(configText.toString('utf8'), configPath);
  const tensors = parseSafetensors(weights, weightsPath);
  checkTensors(config, tensors, weightsPath);
  return { config, tensors };
}

/** Every expected tensor present with its shape and only finite values; nothing unexpected. */
export function checkTensors(config: ScorerConfig, tensors: Map<string, Tensor>, source = 'model.safetensors'): void {
  const expected = expectedTensors(config);
  for (const [name, shape] of expected) {
    const tensor = tensors.get(name);
    if (!tensor) {
      throw new ModelFormatError(`${source}: missing tensor '${name}' of shape [${shape.join(', ')}] (config.json kind '${config.kind}' needs it)`);
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(`${source}: tensor '${name}' has shape [${tensor.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
    }
    const data = tensor.data;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) {
        throw new ModelFormatError(`${source}: tensor '${name}' holds ${data[i]} at flat index ${i} (${indexOf(i, shape)}); weights must be finite`);
      }
    }
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) {
      throw new ModelFormatError(`${source}: unexpected tensor '${name}' for a '${config.kind}' model (expected: ${[...expected.keys()].join(', ') || 'none'})`);
    }
  }
}

function indexOf(flat: number, shape: number[]): string {
  const index: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(flat % shape[d]!);
    flat = Math.floor(flat / shape[d]!);
  }
  return `[${index.join('][')}]`;
}

export function toNativeModel({ config, tensors }: LoadedModel): NativeScorerModel {
  const data: Record<string, Float32Array> = {};
  for (const [name, tensor] of tensors) data[name] = tensor.data;
  const model: NativeScorerModel = {
    kind: config.kind,
    userDim: config.userDim,
    itemDim: config.itemDim,
    heads: config.heads.length,
    activation: config.activation,
    normEps: config.normEps,
    tensors: data,
  };
  if (config.mlp) {
    model.hidden = config.mlp.hidden;
    model.useUser = config.mlp.features.includes('user');
    model.useItem = config.mlp.features.includes('item');
    model.useCross = config.mlp.features.includes('cross');
  }
  if (config.mol) Object.assign(model, config.mol);
  return model;
}
