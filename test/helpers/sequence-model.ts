/**
 * Small user models exported by cangen's trainer for the sequence tests: random weights over a log
 * whose item ids are ad ids ("1" .. "40"), so that a model's items are a corpus's ads. `dot` has the
 * dot head (HSTU, actions and times); `mol` a Mixture-of-Logits head with its scorer/ directory.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { pythonForTraining, trainPackageDir } from '../../lib/cli/train';

export const ITEMS = 40;
// A log whose item ids are the ads' ids (decimal), so that the model's items are the corpus's ads.
const exportScript = `
import sys, torch
from cangen_train.config import make_config
from cangen_train.data import load_interactions
from cangen_train.export import export_model
from cangen_train.models.user_model import UserModel
out = sys.argv[1]
log = out + "/log.csv"
with open(log, "w") as f:
    f.write("user,item,timestamp,action\\n")
    for u in range(10):
        for k in range(${ITEMS}):
            f.write(f"u{u},{(u * 7 + k) % ${ITEMS} + 1},{k * 60 + u},{'view' if k % 3 else 'buy'}\\n")
inter = load_interactions(log)
torch.manual_seed(3)
cfg = make_config(dim=16, layers=2, heads=2, maxLen=12)
model = UserModel(cfg, inter.num_items, len(inter.action_names)).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
export_model(model, out + "/model", inter)
cfg = make_config(dim=16, layers=1, heads=2, maxLen=12, head="mol",
                  mol={"queryComponents": 2, "itemComponents": 2, "componentDim": 8, "gatingWidth": 8, "temperature": 0.1})
model = UserModel(cfg, inter.num_items, len(inter.action_names)).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
export_model(model, out + "/mol", inter)
`;


/** Exports both models under `dir` (dir/dot, dir/mol); python3 with torch must be there. */
export function exportSequenceModels(dir: string): { dot: string; mol: string } {
  const made = spawnSync(pythonForTraining(), ['-c', exportScript, dir], { cwd: trainPackageDir, encoding: 'utf8', timeout: 300_000 });
  assert.is(made.status, 0, `${made.stdout}\n${made.stderr}`);
  return { dot: join(dir, 'model'), mol: join(dir, 'mol') };
}
