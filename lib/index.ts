/** cangen: ads candidate generation for Node.js. */
export { FlatIndex } from './flat-index';
export { FaissIndex, type FaissIndexOptions } from './faiss-index';
export { VectorIndex, type IndexOptions, type SearchOptions, type DeviceChoice } from './vector-index';
export { SearchResults, type ResultRow } from './results';
export { type Metric } from './metric';
export { type IdsInput } from './ids';
export { buildInfo, measureCeilings, type BuildInfo, type Ceilings } from './system';
export { defaults } from './defaults';
export * from './errors';
export {
  AdIndex,
  CompiledFilter,
  type AdIndexOptions,
  type AdAttributes,
  type AdSearchOptions,
  type EligibilityFilter,
  type IndexKind,
  type IndexStats,
  type BudgetState,
} from './ad-index';
export * from './scorer';
