/**
 * Scorer fixtures and the float64 reference, written here independently of lib/ and native/:
 * a safetensors writer, random models of every kind, and the models' math in plain float64 loops.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomVectors } from './random';

export interface TensorSpec {
  shape: number[];
  data: Float32Array;
}
export type Tensors = Record<string, TensorSpec>;
export type Config = Record<string, any>;

/** safetensors bytes: u64 LE header length, JSON header (space-padded to 8 bytes), raw data. */
export function safetensorsBytes(tensors: Tensors, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = encode(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([length, Buffer.from(json), ...chunks]);
}

function encode(data: Float32Array, dtype: string): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 2);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) {
    f[0] = data[i]!;
    if (dtype === 'BF16') out.writeUInt16LE(bits[0]! >>> 16, 2 * i);
    else out.writeUInt16LE(toHalf(data[i]!), 2 * i);
  }
  return out;
}

function toHalf(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  let e = Math.floor(Math.log2(a));
  if (e < -14) return sign | Math.round(a / 2 ** -24);
  let m = Math.round((a / 2 ** e - 1) * 1024);
  if (m === 1024) (m = 0), e++;
  return sign | ((e + 15) << 10) | m;
}

export function tempDir(prefix = 'cangen-scorer-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes config.json and model.safetensors into a fresh temp dir and returns its path. */
export function writeModel(config: Config, tensors: Tensors, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(tensors, dtype));
  return dir;
}

let seedCounter = 1;
function weights(out: number, inn: number, scale = 1): TensorSpec {
  const data = randomVectors(out, inn, 7919 * seedCounter++);
  const s = scale / Math.sqrt(inn);
  for (let i = 0; i < data.length; i++) data[i]! *= s;
  return { shape: [out, inn], data };
}
function vector(n: number, scale = 0.1): TensorSpec {
  const data = randomVectors(1, n, 7919 * seedCounter++);
  for (let i = 0; i < data.length; i++) data[i]! *= scale;
  return { shape: [n], data };
}

/** Fresh random weights for a config (the names and shapes of docs/SCORERS.md). */
export function randomTensors(c: Config): Tensors {
  const t: Tensors = {};
  const h = c.heads.length;
  if (c.kind === 'dot') {
    if (c.dot?.projection) {
      const w = weights(h * c.itemDim, c.userDim);
      t['dot.proj'] = { shape: [h, c.itemDim, c.userDim], data: w.data };
    }
  } else if (c.kind === 'mlp') {
    const f: string[] = c.mlp.features ?? ['user', 'item', 'cross'];
    let input = (f.includes('user') ? c.userDim : 0) + (f.includes('item') ? c.itemDim : 0) + (f.includes('cross') ? c.itemDim : 0);
    c.mlp.hidden.forEach((width: number, l: number) => {
      t[`mlp.layers.${l}.weight`] = weights(width, input, 1.5);
      t[`mlp.layers.${l}.bias`] = vector(width);
      if (c.mlp.layerNorm) {
        const g = vector(width, 0.2);
        for (let i = 0; i < width; i++) g.data[i]! += 1;
        t[`mlp.layers.${l}.norm.weight`] = g;
        t[`mlp.layers.${l}.norm.bias`] = vector(width);
      }
      input = width;
    });
    t['mlp.out.weight'] = weights(h, input);
    t['mlp.out.bias'] = vector(h);
  } else {
    const m = c.mol;
    const p = m.queryComponents * m.itemComponents;
    t['mol.query_proj.weight'] = weights(m.queryComponents * m.componentDim, c.userDim);
    t['mol.query_proj.bias'] = vector(m.queryComponents * m.componentDim);
    t['mol.item_proj.weight'] = weights(m.itemComponents * m.componentDim, c.itemDim);
    t['mol.item_proj.bias'] = vector(m.itemComponents * m.componentDim);
    t['mol.gate.user.weight'] = weights(m.gatingWidth, c.userDim);
    t['mol.gate.user.bias'] = vector(m.gatingWidth);
    t['mol.gate.item.weight'] = weights(m.gatingWidth, c.itemDim);
    t['mol.gate.logits.weight'] = weights(m.gatingWidth, p, 0.3);
    t['mol.gate.out.weight'] = weights(h * p, m.gatingWidth);
    t['mol.gate.out.bias'] = vector(h * p);
  }
  return t;
}

// ---- the float64 reference ------------------------------------------------------------------

function linear(t: Tensors, name: string, x: number[], withBias = true): number[] {
  const w = t[`${name}.weight`]!;
  const [out, inn] = w.shape as [number, number];
  const b = withBias ? t[`${name}.bias`] : undefined;
  const y = new Array<number>(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < inn; i++) s += w.data[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

const act = (name: string, z: number) => (name === 'silu' ? z / (1 + Math.exp(-z)) : Math.max(0, z));

function unit(v: number[]): number[] {
  const n = Math.max(Math.sqrt(v.reduce((s, x) => s + x * x, 0)), 1e-12);
  return v.map((x) => x / n);
}

/** Every head's output for one (user, ad) pair, in float64. */
export function referenceHeads(c: Config, t: Tensors, user: ArrayLike<number>, ad: ArrayLike<number>): number[] {
  const u = Array.from(user);
  const x = Array.from(ad);
  const h = c.heads.length;
  const activation = c.activation ?? 'relu';
  if (c.kind === 'dot') {
    if (!c.dot?.projection) return [u.reduce((s, v, i) => s + v * x[i]!, 0)];
    const p = t['dot.proj']!.data;
    const out: number[] = [];
    for (let head = 0; head < h; head++) {
      let s = 0;
      for (let j = 0; j < c.itemDim; j++) {
        let q = 0;
        for (let i = 0; i < c.userDim; i++) q += p[(head * c.itemDim + j) * c.userDim + i]! * u[i]!;
        s += q * x[j]!;
      }
      out.push(s);
    }
    return out;
  }
  if (c.kind === 'mlp') {
    const f: string[] = c.mlp.features ?? ['user', 'item', 'cross'];
    let z: number[] = [];
    if (f.includes('user')) z = z.concat(u);
    if (f.includes('item')) z = z.concat(x);
    if (f.includes('cross')) z = z.concat(u.map((v, i) => v * x[i]!));
    c.mlp.hidden.forEach((_: number, l: number) => {
      let y = linear(t, `mlp.layers.${l}`, z);
      if (c.mlp.layerNorm) {
        const mean = y.reduce((a, b) => a + b, 0) / y.length;
        const variance = y.reduce((a, b) => a + (b - mean) ** 2, 0) / y.length;
        const g = t[`mlp.layers.${l}.norm.weight`]!.data;
        const b = t[`mlp.layers.${l}.norm.bias`]!.data;
        y = y.map((v, i) => ((v - mean) / Math.sqrt(variance + (c.normEps ?? 1e-5))) * g[i]! + b[i]!);
      }
      z = y.map((v) => act(activation, v));
    });
    return linear(t, 'mlp.out', z);
  }
  const m = c.mol;
  const pq = m.queryComponents, px = m.itemComponents, dc = m.componentDim, p = pq * px;
  const q = linear(t, 'mol.query_proj', u);
  const k = linear(t, 'mol.item_proj', x);
  const qs = Array.from({ length: pq }, (_, i) => unit(q.slice(i * dc, (i + 1) * dc)));
  const ks = Array.from({ length: px }, (_, j) => unit(k.slice(j * dc, (j + 1) * dc)));
  const logits: number[] = [];
  for (let i = 0; i < pq; i++) for (let j = 0; j < px; j++) logits.push(qs[i]!.reduce((s, v, c2) => s + v * ks[j]![c2]!, 0) / (m.temperature ?? 1));
  const gu = linear(t, 'mol.gate.user', u);
  const gx = linear(t, 'mol.gate.item', x, false);
  const gl = linear(t, 'mol.gate.logits', logits, false);
  const hidden = gu.map((v, o) => act(activation, v + gx[o]! + gl[o]!));
  const gates = linear(t, 'mol.gate.out', hidden);
  const out: number[] = [];
  for (let head = 0; head < h; head++) {
    const g = gates.slice(head * p, (head + 1) * p);
    const max = Math.max(...g);
    const e = g.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    out.push(e.reduce((s, v, i) => s + (v / sum) * logits[i]!, 0));
  }
  return out;
}

/** Blended scores, users x ads, in float64. */
export function referenceScores(c: Config, t: Tensors, users: Float32Array, ads: Float32Array, weights: number[]): Float64Array {
  const nu = users.length / c.userDim;
  const n = ads.length / c.itemDim;
  const out = new Float64Array(nu * n);
  for (let u = 0; u < nu; u++) {
    const user = users.subarray(u * c.userDim, (u + 1) * c.userDim);
    for (let a = 0; a < n; a++) {
      const heads = referenceHeads(c, t, user, ads.subarray(a * c.itemDim, (a + 1) * c.itemDim));
      out[u * n + a] = heads.reduce((s, v, i) => s + v * weights[i]!, 0);
    }
  }
  return out;
}
