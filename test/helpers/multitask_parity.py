"""For test/multitask-export.test.ts: trains a small multi-task model (labels engagement / click /
conversion, scenario heads and scenario input, gated towers, ESMM) with cangen's trainer, exports
it, and writes what PyTorch scores for a few histories under every scenario, so the Node side can
check that SequenceEncoder + LearnedScorer (the export's scorer/) serve the same scores.

Run from train/: python3 multitask_parity.py OUT_DIR  (writes OUT_DIR/model and OUT_DIR/expected.json)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from cangen_train.config import make_config
from cangen_train.export import load_model
from cangen_train.trainer import train

LABELS, SCENARIOS, ITEMS = ("engagement", "click", "conversion"), ("home", "search", "related"), 30


def write_log(path):
    rng = np.random.default_rng(5)
    rows = ["user,item,timestamp,action,scenario"]
    for u in range(40):
        for k in range(10):
            label = LABELS[min(2, int(rng.integers(0, 4)) // 2 + (k % 5 == 4))]
            rows.append(f"u{u},i{int(rng.integers(ITEMS))},{k},{label},{SCENARIOS[int(rng.integers(3))]}")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def main(out_dir):
    log = os.path.join(out_dir, "log.csv")
    write_log(log)
    cfg = make_config(tasks=list(LABELS), target="click", scenarioHeads=True, scenarioInput=True, towers="gated", experts=3,
                      esmm="click:conversion", dim=16, heads=2, layers=2, maxLen=8, epochs=2, batchSize=8, negatives=8,
                      inBatchNegatives=8, threads=1, seed=3, scenarioWeights={"search": {"click": 1, "conversion": 3}})
    with open(os.devnull, "w") as quiet:
        train(cfg, log, os.path.join(out_dir, "model"), log=quiet)
    model = load_model(os.path.join(out_dir, "model")).double()
    with open(os.path.join(out_dir, "model", "actions.txt")) as f:
        tokens = f.read().split()
    with open(os.path.join(out_dir, "model", "scorer", "config.json")) as f:
        blends = json.load(f)["scenarios"]
    rng = np.random.default_rng(9)
    n_items = model.items.id.num_embeddings - 1
    users = []
    for length in (1, 3, 8, 11):
        users.append({"items": rng.integers(1, n_items + 1, length).tolist(), "actions": rng.integers(1, len(tokens) + 1, length).tolist(),
                      "times": sorted(rng.integers(0, 1000, length).tolist())})
    ids = torch.zeros(len(users), cfg["maxLen"], dtype=torch.long)
    actions = torch.zeros_like(ids)
    times = torch.zeros_like(ids)
    for u, h in enumerate(users):
        n = min(len(h["items"]), cfg["maxLen"])
        ids[u, -n:] = torch.tensor(h["items"][-n:])
        actions[u, -n:] = torch.tensor(h["actions"][-n:])
        times[u, -n:] = torch.tensor(h["times"][-n:])
        times[u, :-n] = h["times"][-n]
    with torch.no_grad():
        state = F.normalize(model(ids, times, actions)[:, -1, 0], dim=-1)
        every = model.task_heads.all_queries(state)  # (U, H, d)
        table = F.normalize(model.items.table(), dim=-1)[1:]
        per_head = torch.einsum("uhd,nd->uhn", every, table)
        scores = {}
        for s, weights in blends.items():
            w = torch.tensor([weights.get(h, 0.0) for h in model.task_heads.names], dtype=torch.float64)
            scores[s] = torch.einsum("h,uhn->un", w, per_head).flatten().tolist()
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"users": users, "tokens": tokens, "heads": model.task_heads.names, "scenarios": blends, "numItems": n_items,
                   "dim": cfg["dim"], "scores": scores, "queries": state.flatten().tolist()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
