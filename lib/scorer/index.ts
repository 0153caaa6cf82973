/** Learned scorers (dot, MLP, Mixture-of-Logits) and two-stage retrieval. See docs/SCORERS.md. */
export { LearnedScorer, type ScorerInfo, type ScorerOptions, type ScorerSearchOptions, type BlendOptions } from './scorer';
export { TwoStageRetriever, type FirstStage, type TwoStageOptions, type TwoStageSearchOptions, type TwoStageResults } from './two-stage';
export { IndexReranker, type Reranker, type RerankOptions } from './reranker';
export { ModelFormatError, UnknownScenarioError, UnknownHeadError, type ScorerErrorCode } from './errors';
export { parseConfig, expectedTensors, type ScorerConfig, type ScorerKind, type Activation, type MlpFeature } from './config';
export { parseSafetensors, type Tensor } from './safetensors';
