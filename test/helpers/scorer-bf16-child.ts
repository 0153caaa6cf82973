/**
 * Run by test/scorer-precision.test.ts in a child process with CANGEN_SCORER_SIMD=avx2 (the kernels
 * are chosen once per process): a bf16 MLP and MoL search against fp32 on this build's kernels.
 * Prints JSON: per model, the bf16 kernels' name, the recall of each user's row against the fp32
 * scan and whether every returned score equals the fp32 scorer's score of that ad.
 */
import { LearnedScorer } from '../../lib';
import { clusteredVectors } from './clustered';
import { randomVectors, sequentialIds } from './random';
import { randomTensors, writeModel, type Config } from './scorer-model';

const models: Config[] = [
  { kind: 'mlp', userDim: 16, itemDim: 16, heads: ['click'], mlp: { hidden: [48, 24] } },
  { kind: 'mol', userDim: 16, itemDim: 12, heads: ['click'], mol: { queryComponents: 4, itemComponents: 2, componentDim: 16, gatingWidth: 32, temperature: 0.1 } },
];

async function main() {
  const out = [];
  for (const config of models) {
    const dir = writeModel(config, randomTensors(config));
    const [fp32, bf16] = [await LearnedScorer.load(dir), await LearnedScorer.load(dir, { precision: 'bf16' })];
    const n = 3000;
    const ads = clusteredVectors(n, config.itemDim, 25, 81, 0.05);
    for (const s of [fp32, bf16]) await s.add(sequentialIds(n), ads);
    const users = randomVectors(5, config.userDim, 82);
    const got = await bf16.search(users, 20), want = await fp32.search(users, 20);
    const recalls: number[] = [];
    let fp32Scores = true;
    for (let u = 0; u < 5; u++) {
      const row = got.row(u), exact = new Set(want.row(u).ids);
      recalls.push(row.ids.filter((id) => exact.has(id)).length / row.ids.length);
      const scores = await fp32.score(users.subarray(u * config.userDim, (u + 1) * config.userDim), row.ids);
      fp32Scores &&= scores.every((s, i) => s === row.scores[i]);
    }
    out.push({ kind: config.kind, simd: fp32.info().simd, reducedSimd: bf16.info().reducedSimd, recalls, fp32Scores });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
