/**
 * A small service in a process of its own (an empty corpus, one popularity scenario), for tests
 * whose client must not share the server's event loop (a client writing a large body while the
 * server answers). Prints its address on the first line of stdout; SIGTERM stops it.
 */
import { CandidateEngine } from '../../lib/orchestration';
import { createService, loadConfig } from '../../lib/service';

const overrides = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const config = loadConfig({ env: {}, overrides: { port: 0, corpus: 'empty', dim: 4, drainDelayMs: 0, saveIntervalMs: 0, ...overrides } });
const engine = new CandidateEngine({ dim: 4, scenarios: [{ name: 's', generators: ['popularity'] }] });
const service = createService(engine, config);
void service.start().then((url) => console.log(url));
process.once('SIGTERM', () => void service.stop().then(() => process.exit(0)));
