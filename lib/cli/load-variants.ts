/**
 * The server configurations `cangen bench --sweep --variants a,b` compares: each a named set of
 * service config overrides, applied on top of the bench's own (ads, index, search effort).
 * Add one by adding a row. Keys this build's ServiceConfig does not know are dropped with a
 * note (a variant planned for a setting that has not landed yet runs as the plain config).
 */
import { defaultConfig, type ServiceConfig } from '../service';

export type VariantOverrides = Partial<ServiceConfig> & { [key: string]: unknown };

export interface LoadVariant {
  name: string;
  overrides: VariantOverrides;
  /** Environment variables of the server child (settings read from the environment, such as CANGEN_INLINE_MACS). */
  env?: Record<string, string>;
}

export const loadVariants: readonly LoadVariant[] = [
  // Issue 10's settings (ServiceConfig.batching and .precision, and the fast path for tiny native
  // calls): 'before' is the service without any of them.
  { name: 'before', overrides: { batching: false, precision: 'fp32' }, env: { CANGEN_INLINE_MACS: '0' } },
  { name: 'batching', overrides: { batching: true, precision: 'fp32' } },
  { name: 'batching+bf16', overrides: { batching: true, precision: 'bf16' } },
  { name: 'batching+int8', overrides: { batching: true, precision: 'int8' } },
  // The configuration's defaults with the fast path for tiny native calls off
  // (bindings/inline_work.h): every native call goes to a worker.
  { name: 'no-fast-path', overrides: {}, env: { CANGEN_INLINE_MACS: '0' } },
];

/** The named variants, in the order asked; an unknown name throws with the list of known ones. */
export function variantsNamed(names: readonly string[]): LoadVariant[] {
  return names.map((name) => {
    const variant = loadVariants.find((v) => v.name === name);
    if (!variant) throw new Error(`Unknown variant '${name}' for --variants; expected some of ${loadVariants.map((v) => v.name).join(', ')}`);
    return variant;
  });
}

/** The overrides this build's config knows, and the keys it does not (dropped). */
export function knownOverrides(variant: LoadVariant): { overrides: Partial<ServiceConfig>; dropped: string[] } {
  const overrides: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(variant.overrides)) {
    if (key in defaultConfig) overrides[key] = value;
    else dropped.push(key);
  }
  return { overrides: overrides as Partial<ServiceConfig>, dropped };
}
