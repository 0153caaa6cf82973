/** `cangen serve`: the HTTP service until SIGINT or SIGTERM, then a graceful drain. */
import { buildEngine, createService, loadConfig, type ServiceConfig } from '../service';
import { progressBar } from './progress';

export async function runServe(file: string | undefined, overrides: Partial<ServiceConfig>, print: (line: string) => void = console.log) {
  const config = loadConfig({ file, overrides });
  const { engine } = await buildEngine(config, progressBar('loading ads'));
  const service = createService(engine, config);
  const address = await service.start();
  print(`cangen listening on ${address} (${engine.store.size} ads, scenarios ${engine.pipeline.scenarios.names.join(', ')}; corpus writes ${config.token ? 'need the token' : 'disabled'})`);
  const shutdown = (signal: string) => {
    print(`${signal}: draining`);
    service.stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return service;
}
