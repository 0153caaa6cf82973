/** `cangen serve`: the HTTP service until SIGINT or SIGTERM, then a graceful drain. */
import { buildEngine, createService, loadConfig, type ServiceConfig } from '../service';
import { simulatorSource } from '../simulator/service-corpus';
import { historyStoreOptions } from '../service/history';
import { stopOnSignal } from './on-signal';
import { progressBar } from './progress';

/** Where the service keeps user histories, for the start-up line. */
function historyWhere(config: ServiceConfig): string {
  const options = historyStoreOptions(config);
  if (options.kind === 'redis') return `in Redis (${config.redisPrefix}*)`;
  return options.snapshotFile ? `snapshotted to ${options.snapshotFile}` : 'in memory only';
}

export async function runServe(file: string | undefined, overrides: Partial<ServiceConfig>, print: (line: string) => void = console.log) {
  const config = loadConfig({ file, overrides });
  const { engine, histories } = await buildEngine(config, {
    source: config.corpus === 'simulator' ? simulatorSource(config) : undefined,
    onProgress: progressBar('loading ads'),
    log: (line) => print(line),
  });
  const service = createService(engine, config, undefined, histories);
  const address = await service.start();
  print(`cangen listening on ${address} (${engine.store.size} ads, scenarios ${engine.pipeline.scenarios.names.join(', ')}; corpus writes ${config.token ? 'need the token' : 'disabled'}; corpus ${config.dataDir ? `kept in ${config.dataDir}` : 'in memory only: set dataDir to keep it'}; user histories ${historyWhere(config)}${config.sequenceModel ? `; sequence model ${config.sequenceModel}` : ''})`);
  stopOnSignal('draining', () => service.stop(), print);
  return service;
}
