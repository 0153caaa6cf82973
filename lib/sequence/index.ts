/** Serving trained user-sequence models (HSTU, SASRec). See docs/SEQUENCES.md. */
export { SequenceEncoder, type SequenceHistories, type SequenceEncodeOptions, type SequenceEncoderOptions } from './encoder';
export { parseSequenceConfig, expectedSequenceTensors, type SequenceConfig, type SequenceModelKind } from './config';
