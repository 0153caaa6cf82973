/** cangen: ads candidate generation for Node.js. */
export { FlatIndex, type IndexOptions } from './flat-index';
export { FaissIndex, type FaissIndexOptions } from './faiss-index';
export type { VectorIndex, SearchOptions } from './vector-index';
export { type DeviceChoice } from './device';
export { SearchResults, type ResultRow } from './results';
export { type Metric } from './metric';
export { type IdsInput } from './ids';
export { buildInfo, measureCeilings, limits, setLimits, type BuildInfo, type Ceilings, type Limits, type LimitsUsage } from './system';
export { defaults } from './defaults';
export * from './errors';
export {
  AdIndex,
  CompiledFilter,
  type AdIndexOptions,
  type ScanPrecision,
  type AdAttributes,
  type AdSearchOptions,
  type EligibilityFilter,
  type IndexKind,
  type IndexStats,
  type BudgetState,
} from './ad-index';
export * from './scorer';
export * from './sequence';
// Orchestration: generators, pipeline, quota allocation, scenarios (docs/ORCHESTRATION.md).
export {
  CandidateEngine, Pipeline, Scenarios, AdStore, EmbeddingCorpus, TwoTowerGenerator, ScorerGenerator, DotProductScorer,
  LearnedScorerAdapter, ContentGenerator, PopularityGenerator, HashedNgramEmbedder, OpenAIEmbedder, ThompsonAllocator,
  StaticAllocator, apportion, mergeCandidates, readStateFile, writeStateFile, defaultScenarios, parseScenario,
  UnknownGeneratorError, EmbedderError, StateFileError, ConfigError,
  type EngineOptions, type AdUpsert, type CandidateGenerator, type GeneratorInput, type GeneratedCandidate, type Candidate,
  type RetrieveRequest, type RetrieveResult, type GeneratorReport, type GeneratorStatus, type UserFeatures, type FeedbackEvent,
  type FeedbackType, type FeedbackInput, type LedgerFeedback, type QuotaAllocator, type ServedReport, type ThompsonOptions,
  type Scorer, type Embedder, type ScenarioConfig, type Scenario, type OrchestrationErrorCode,
} from './orchestration';
export { type SearchIndex, type IndexFilter } from './corpus/search-index';
export { simulate, Marketplace, quotasSvg, formatReport, type SimulationOptions, type SimulationReport, type ArmResult } from './simulator';
export { createService, buildEngine, loadConfig, type ServiceConfig, type CangenService } from './service';
// Cross-request batching of native searches (docs/ORCHESTRATION.md, "Batching concurrent searches").
export { RequestBatcher, splitBySize, type BatchingOptions, type BatcherStats, type BatchRun } from './request-batcher';
// User histories for sequence models (docs/HISTORY.md).
export {
  MemoryHistoryStore, RedisHistoryStore, openHistoryStore, HistoryBatch, HistoryUnavailableError, historyDefaults,
  type UserHistoryStore, type HistoryEvent, type StoredEvent, type AppendResult, type HistoryHealth, type HistoryStats,
  type HistoryStoreOptions, type MemoryHistoryOptions, type RedisHistoryOptions, type HistoryErrorCode,
} from './history';
// The sharded, replicated corpus on NATS JetStream (docs/CLUSTER.md).
export {
  initCluster, CorpusLog, ShardReplica, ClusterRouter, readShardMap, shardOf, adIdHash, clusterNames, laterPosition, mergeShardResults,
  encodeUpdate, decodeUpdate, ClusterMetrics, ClusterError, NoShardMapError, MalformedMessageError,
  ClusterEngine, RemoteIndex, ShardScorer, CatalogLog, CatalogApplier, CatalogProgress,
  type ClusterEngineOptions, type RemoteIndexOptions, type CatalogApplied, type CatalogStats,
  type ClusterInitOptions, type CorpusLogOptions, type CorpusLogStats, type ReplicaOptions, type ReplicaStats, type RouterOptions, type ClusterSearchOptions, type ClusterSearchResult,
  type ShardOutcome, type RouterStats, type ShardMap, type LogPosition, type MemberEntry, type ReplicaHealth, type CorpusUpdate, type ClusterErrorCode,
  type SnapshotOptions, type SnapshotManifest,
} from './cluster';
