/**
 * The child of test/corpus-crash.test.ts: opens an engine on a data dir and applies the
 * deterministic write stream from batch `start` on, printing `ack <n>` after batch n resolves,
 * until it is killed. Every 7th batch it also writes a snapshot, so kills land during those too.
 */
import { CandidateEngine } from '../../lib/orchestration/engine';
import { batchOf, crashDim } from './crash-stream';

async function main(): Promise<void> {
  const [dataDir, startArg] = process.argv.slice(2);
  const engine = await CandidateEngine.open({ dim: crashDim, dataDir: dataDir!, scenarios: [{ name: 's', generators: ['two-tower'] }] });
  process.stdout.write('ready\n');
  for (let n = Number(startArg); ; n++) {
    const batch = batchOf(n);
    if (batch.kind === 'upsert') await engine.upsertAds(batch.ads);
    else if (batch.kind === 'remove') await engine.removeAds(batch.ids);
    else await engine.setCampaignBudgets(batch.budgets);
    process.stdout.write(`ack ${n}\n`);
    if (n % 7 === 0) await engine.corpus.snapshot();
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
