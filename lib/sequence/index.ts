/** Serving trained user-sequence models (HSTU, SASRec). See docs/SEQUENCES.md. */
export { SequenceEncoder, type SequenceEncoderOptions } from './encoder';
export type { SequenceEncodeDeviceOptions, SequenceEncodeOptions, SequenceHistories } from './histories';
export { SequenceSessions, type SequenceSessionOptions, type SequenceSessionStats } from './sessions';
export { parseSequenceConfig, expectedSequenceTensors, type SequenceConfig, type SequenceModelKind } from './config';
export { ScenarioHeads } from './scenario-heads';
