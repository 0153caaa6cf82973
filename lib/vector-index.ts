/**
 * @deprecated since 0.2.0: every index is an AdIndex (FlatIndex and FaissIndex are presets of it).
 * These names stay as type aliases for code written against 0.1; see CHANGELOG.md.
 */
export type { AdIndex as VectorIndex, AdSearchOptions as SearchOptions } from './ad-index';
