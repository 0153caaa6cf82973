/**
 * Argument checks with one message shape: "Expected X for Y but received Z".
 */
import { DimensionMismatchError, InvalidArgumentError } from './errors';

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const length = 'length' in value ? (value as { length: number }).length : value.byteLength;
    return `a ${value.constructor.name} of length ${length}`;
  }
  if (typeof value === 'string') return `the string '${value}'`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}

export function invalid(expected: string, name: string, received: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`Expected ${expected} for ${name} but received ${describe(received)}`);
}

export function integerIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`an integer between ${min} and ${max}`, name, value);
  }
  return value;
}

export function numberIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !(value >= min && value <= max)) throw invalid(`a number between ${min} and ${max}`, name, value);
  return value;
}

export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(`one of ${allowed.map((a) => `'${a}'`).join(', ')}`, name, value);
  }
  return value as T;
}

export function float32Array(value: unknown, name: string): Float32Array {
  if (!(value instanceof Float32Array)) throw invalid('a Float32Array', name, value);
  return value;
}

/** Rejects unknown keys, naming the closest known one so that misspellings are caught. */
export function knownOptions(options: unknown, name: string, allowed: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('an options object', name, options);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const close = allowed.find((a) => a.toLowerCase() === key.toLowerCase() || editDistance(a, key) <= 2);
      const hint = close ? ` (did you mean '${close}'?)` : ` (known options: ${allowed.join(', ')})`;
      throw new InvalidArgumentError(`Unknown option '${key}' in ${name}${hint}`);
    }
  }
  return options as Record<string, unknown>;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** A Float32Array of `ids` rows of `dim` values (one embedding per id). */
export function rowsPerId(vectors: unknown, ids: number, dim: number, name = 'vectors'): Float32Array {
  const values = float32Array(vectors, name);
  if (values.length !== ids * dim) {
    throw new DimensionMismatchError(
      `Expected ${ids} x ${dim} = ${ids * dim} values for ${name} (one row of dim ${dim} per id) but received ${values.length}`,
    );
  }
  return values;
}

/** A non-empty Float32Array of whole rows of `dim` values. */
export function wholeRows(values: unknown, dim: number, name: string, dimName = 'dim'): Float32Array {
  const rows = float32Array(values, name);
  if (rows.length === 0 || rows.length % dim !== 0) {
    throw new DimensionMismatchError(`Expected a non-empty multiple of ${dimName} ${dim} values for ${name} but received ${rows.length}`);
  }
  return rows;
}
