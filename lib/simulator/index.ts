/** The marketplace simulator: a synthetic world with a hidden truth, run through the real pipeline. */
export { Marketplace, pClick, pConversion, scenarioTruth, type WorldOptions } from './world';
export { simulate, type ArmResult, type GeneratorOutcome, type SimulationOptions, type SimulationReport } from './run';
export { browsingLog, simulatorSequenceModel, type SequenceModel, type SequenceSummary } from './sequence-model';
export { quotasSvg } from './svg';
export { formatReport, machine } from './report';
export { simulatorSource } from './service-corpus';
