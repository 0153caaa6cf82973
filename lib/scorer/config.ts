/**
 * config.json of a scorer model directory: its kind and shapes, head names and per-scenario head
 * weights. Parsed and checked here; docs/SCORERS.md documents every field.
 */
import { ModelFormatError } from './errors';

export type ScorerKind = 'dot' | 'mlp' | 'mol';
export type Activation = 'relu' | 'silu';
export type MlpFeature = 'user' | 'item' | 'cross';

export interface ScorerConfig {
  kind: ScorerKind;
  userDim: number;
  itemDim: number;
  /** Head names, in the order of the output rows. */
  heads: string[];
  /** Scenario name -> { head name: weight }; heads left out weigh 0. */
  scenarios: Record<string, Record<string, number>>;
  /** The scenario used when a request names none (optional). */
  defaultScenario?: string;
  activation: Activation;
  normEps: number;
  dot?: { projection: boolean };
  mlp?: { hidden: number[]; features: MlpFeature[]; layerNorm: boolean };
  mol?: { queryComponents: number; itemComponents: number; componentDim: number; gatingWidth: number; temperature: number };
}

const topLevelKeys = ['format', 'version', 'kind', 'userDim', 'itemDim', 'heads', 'scenarios', 'defaultScenario',
  'activation', 'normEps', 'dot', 'mlp', 'mol'];

export function parseConfig(json: string, source = 'config.json'): ScorerConfig {
  const fail = (why: string) => new ModelFormatError(`${source}: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw fail(`not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw fail('expected a JSON object');
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!topLevelKeys.includes(key)) throw fail(`unknown field '${key}' (known: ${topLevelKeys.join(', ')})`);
  if (c.format !== undefined && c.format !== 'cangen-scorer') throw fail(`expected format 'cangen-scorer' but found ${JSON.stringify(c.format)}`);
  if (c.version !== undefined && c.version !== 1) throw fail(`expected version 1 but found ${JSON.stringify(c.version)}`);

  const size = (value: unknown, name: string, max = 65536): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw fail(`expected ${name} to be an integer between 1 and ${max} but found ${JSON.stringify(value)}`);
    }
    return value;
  };
  const section = (name: string): Record<string, unknown> => {
    const s = c[name];
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw fail(`kind '${c.kind}' needs a '${name}' object`);
    return s as Record<string, unknown>;
  };

  const kind = c.kind;
  if (kind !== 'dot' && kind !== 'mlp' && kind !== 'mol') throw fail(`expected kind 'dot', 'mlp' or 'mol' but found ${JSON.stringify(kind)}`);
  const heads = c.heads ?? ['score'];
  if (!Array.isArray(heads) || heads.length === 0 || !heads.every((h) => typeof h === 'string' && h.length > 0)) {
    throw fail(`expected heads to be a non-empty list of names but found ${JSON.stringify(c.heads)}`);
  }
  if (new Set(heads).size !== heads.length) throw fail(`head names repeat: ${JSON.stringify(heads)}`);
  const scenarios = (c.scenarios ?? {}) as Record<string, unknown>;
  if (typeof scenarios !== 'object' || Array.isArray(scenarios)) throw fail('expected scenarios to be an object');
  const parsedScenarios: Record<string, Record<string, number>> = {};
  for (const [name, weights] of Object.entries(scenarios)) {
    if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) throw fail(`scenario '${name}' must map head names to weights`);
    for (const [head, w] of Object.entries(weights as Record<string, unknown>)) {
      if (!heads.includes(head)) throw fail(`scenario '${name}' weighs head '${head}', which is not one of the heads (${heads.join(', ')})`);
      if (typeof w !== 'number' || !Number.isFinite(w)) throw fail(`scenario '${name}' gives head '${head}' the weight ${JSON.stringify(w)}`);
    }
    parsedScenarios[name] = { ...(weights as Record<string, number>) };
  }
  if (c.defaultScenario !== undefined && (typeof c.defaultScenario !== 'string' || !(c.defaultScenario in parsedScenarios))) {
    throw fail(`defaultScenario ${JSON.stringify(c.defaultScenario)} is not one of the scenarios`);
  }
  const activation = c.activation ?? 'relu';
  if (activation !== 'relu' && activation !== 'silu') throw fail(`expected activation 'relu' or 'silu' but found ${JSON.stringify(activation)}`);
  const normEps = c.normEps ?? 1e-5;
  if (typeof normEps !== 'number' || !(normEps > 0)) throw fail(`expected normEps > 0 but found ${JSON.stringify(normEps)}`);

  const config: ScorerConfig = {
    kind,
    userDim: size(c.userDim, 'userDim'),
    itemDim: size(c.itemDim, 'itemDim'),
    heads: heads as string[],
    scenarios: parsedScenarios,
    ...(typeof c.defaultScenario === 'string' ? { defaultScenario: c.defaultScenario } : {}),
    activation,
    normEps,
  };
  if (kind === 'dot') {
    const s = c.dot === undefined ? {} : section('dot');
    config.dot = { projection: s.projection === true };
    if (!config.dot.projection && config.userDim !== config.itemDim) throw fail('a dot scorer without a projection needs userDim == itemDim');
    if (!config.dot.projection && config.heads.length !== 1) throw fail('a dot scorer with several heads needs dot.projection: true');
  } else if (kind === 'mlp') {
    const s = section('mlp');
    if (!Array.isArray(s.hidden) || s.hidden.length === 0) throw fail(`expected mlp.hidden to be a non-empty list of widths but found ${JSON.stringify(s.hidden)}`);
    const hidden = s.hidden.map((w, i) => size(w, `mlp.hidden[${i}]`));
    const features = (s.features ?? ['user', 'item', 'cross']) as unknown[];
    if (!Array.isArray(features) || !features.every((f) => f === 'user' || f === 'item' || f === 'cross') || new Set(features).size !== features.length) {
      throw fail(`expected mlp.features to list distinct 'user', 'item', 'cross' but found ${JSON.stringify(s.features)}`);
    }
    if (!features.includes('item') && !features.includes('cross')) throw fail("mlp.features needs 'item' or 'cross': otherwise no score depends on the ad");
    if (features.includes('cross') && config.userDim !== config.itemDim) throw fail("the 'cross' feature (u * x) needs userDim == itemDim");
    config.mlp = { hidden, features: features as MlpFeature[], layerNorm: s.layerNorm === true };
  } else {
    const s = section('mol');
    const temperature = s.temperature ?? 1;
    if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) {
      throw fail(`expected mol.temperature > 0 but found ${JSON.stringify(s.temperature)}`);
    }
    config.mol = {
      queryComponents: size(s.queryComponents, 'mol.queryComponents', 256),
      itemComponents: size(s.itemComponents, 'mol.itemComponents', 256),
      componentDim: size(s.componentDim, 'mol.componentDim', 4096),
      gatingWidth: size(s.gatingWidth, 'mol.gatingWidth'),
      temperature,
    };
  }
  return config;
}

/** The tensors a config calls for, name -> shape, in a stable order. */
export function expectedTensors(config: ScorerConfig): Map<string, number[]> {
  const t = new Map<string, number[]>();
  const { userDim: du, itemDim: dx } = config;
  const h = config.heads.length;
  if (config.kind === 'dot') {
    if (config.dot!.projection) t.set('dot.proj', [h, dx, du]);
  } else if (config.kind === 'mlp') {
    const m = config.mlp!;
    let input = (m.features.includes('user') ? du : 0) + (m.features.includes('item') ? dx : 0) + (m.features.includes('cross') ? dx : 0);
    m.hidden.forEach((width, l) => {
      t.set(`mlp.layers.${l}.weight`, [width, input]);
      t.set(`mlp.layers.${l}.bias`, [width]);
      if (m.layerNorm) {
        t.set(`mlp.layers.${l}.norm.weight`, [width]);
        t.set(`mlp.layers.${l}.norm.bias`, [width]);
      }
      input = width;
    });
    t.set('mlp.out.weight', [h, input]);
    t.set('mlp.out.bias', [h]);
  } else {
    const m = config.mol!;
    const p = m.queryComponents * m.itemComponents;
    t.set('mol.query_proj.weight', [m.queryComponents * m.componentDim, du]);
    t.set('mol.query_proj.bias', [m.queryComponents * m.componentDim]);
    t.set('mol.item_proj.weight', [m.itemComponents * m.componentDim, dx]);
    t.set('mol.item_proj.bias', [m.itemComponents * m.componentDim]);
    t.set('mol.gate.user.weight', [m.gatingWidth, du]);
    t.set('mol.gate.user.bias', [m.gatingWidth]);
    t.set('mol.gate.item.weight', [m.gatingWidth, dx]);
    t.set('mol.gate.logits.weight', [m.gatingWidth, p]);
    t.set('mol.gate.out.weight', [h * p, m.gatingWidth]);
    t.set('mol.gate.out.bias', [h * p]);
  }
  return t;
}
