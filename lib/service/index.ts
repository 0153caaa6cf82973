/** The cangen HTTP service. */
export { loadConfig, defaultConfig, environment, type ServiceConfig } from './config';
export { buildEngine, type BuiltEngine, type BuildOptions, type CorpusSource } from './build-engine';
export { createService, type CangenService } from './server';
export { ServiceMetrics } from './metrics';
export { historyStoreOptions, openServiceHistories } from './history';
