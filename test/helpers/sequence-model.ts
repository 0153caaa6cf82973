/**
 * Small user models exported by cangen's trainer for the sequence tests: random weights over a log
 * whose item ids are ad ids ("1" .. "40"), so that a model's items are a corpus's ads. `dot` has the
 * dot head (HSTU, actions and times); `mol` a Mixture-of-Logits head with its scorer/ directory;
 * `multi` a multi-task model (labels view and buy, a head per label and scenario home / search,
 * blends home: view 1 + buy 0.5, search: buy 1).
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
cfg = make_config(dim=16, layers=1, heads=2, maxLen=12, tasks=["view", "buy"], scenarioHeads=True)
model = UserModel(cfg, inter.num_items, len(inter.action_names), scenarios=["home", "search"]).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
export_model(model, out + "/multi", inter, scenario_weights={"home": {"view@home": 1.0, "buy@home": 0.5}, "search": {"buy@search": 1.0}})
`;


/** Exports the models under `dir` (dir/model, dir/mol, dir/multi); python3 with torch must be there. */
export function exportSequenceModels(dir: string): { dot: string; mol: string; multi: string } {
  const made = spawnSync(pythonForTraining(), ['-c', exportScript, dir], { cwd: trainPackageDir, encoding: 'utf8', timeout: 300_000 });
  assert.is(made.status, 0, `${made.stdout}\n${made.stderr}`);
  return { dot: join(dir, 'model'), mol: join(dir, 'mol'), multi: join(dir, 'multi') };
}
