/** The marketplace simulator: a synthetic world with a hidden truth, run through the real pipeline. */
export { Marketplace, pClick, pConversion, scenarioTruth, type WorldOptions } from './world';
export { simulate, type ArmResult, type GeneratorOutcome, type ScenarioOutcome, type SimulationOptions, type SimulationReport } from './run';
export { compareModels, type ModelComparison } from './compare';
export { browsingLog, simulatorSequenceModel, type SequenceModel } from './sequence-model';
export { eventLog, eventsCsv, historiesOf, type EventLabel, type LoggedEvent } from './event-log';
export { simulatorEventModel, type EventModelName } from './event-models';
export { type RunModelName, type SequenceSummary } from './run-models';
export { quotasSvg } from './svg';
export { formatComparison, formatReport, machine } from './report';
export { simulatorSource } from './service-corpus';
