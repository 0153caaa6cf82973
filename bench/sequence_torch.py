#!/usr/bin/python3
"""PyTorch (eager, CPU) peer of bench/sequence.ts. Two commands, one JSON argument each:

  export '{"out": dir, "items": N, "models": [{"name", "maxLen", "layers", "dim", "heads"}]}'
      random-weight HSTU models (with times) made and exported by cangen's trainer, one directory each
  run '{"model": dir, "histories": prefix, "users": U, "batches": [1, 256], "batch1Users": n,
        "reps": r, "threads": T}'
      times the trainer's own module (cangen_train.export.load_model) on the histories in
      prefix.items (int32, U x maxLen) and prefix.times (float64, U x maxLen)

Run with PYTHONPATH=train/. `run` prints one JSON object: torch version, threads, per batch the
milliseconds per repetition, and user 0's query (to compare with cangen's).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from cangen_train.config import make_config
from cangen_train.data import load_interactions
from cangen_train.export import export_model, load_model
from cangen_train.models.user_model import UserModel


def export(a):
    os.makedirs(a["out"], exist_ok=True)
    log = os.path.join(a["out"], "log.csv")
    with open(log, "w") as f:  # every item once: the vocabulary is what the export needs from the log
        f.write("user,item,timestamp\n" + "".join(f"u{i % 7},i{i},{i}\n" for i in range(a["items"])))
    inter = load_interactions(log)
    for n, m in enumerate(a["models"]):
        cfg = make_config(model="hstu", dim=m["dim"], layers=m["layers"], heads=m["heads"], maxLen=m["maxLen"], head="dot")
        torch.manual_seed(n)
        model = UserModel(cfg, inter.num_items).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # every weight off its initial value
        export_model(model, os.path.join(a["out"], m["name"]), inter)


def left_padded(items, times, max_len):
    """Right-aligned windows as the trainer's evaluation builds them (evaluate.batch_inputs): the
    last max_len events, padded on the left, padded times equal to the first real one."""
    b, n = items.shape
    ids = torch.zeros(b, max_len, dtype=torch.long)
    t = torch.zeros(b, max_len, dtype=torch.long)
    keep = min(n, max_len)
    ids[:, max_len - keep:] = torch.from_numpy(items[:, -keep:].astype(np.int64))
    t[:, max_len - keep:] = torch.from_numpy(times[:, -keep:].astype(np.int64))
    t[:, : max_len - keep] = t[:, max_len - keep : max_len - keep + 1]
    return ids, t


def run(a):
    torch.set_num_threads(a["threads"])
    model = load_model(a["model"])
    max_len = model.cfg["maxLen"]
    items = np.fromfile(a["histories"] + ".items", dtype="<i4").reshape(a["users"], -1)
    times = np.fromfile(a["histories"] + ".times", dtype="<f8").reshape(a["users"], -1)

    def encode(lo, hi):  # the query at the last position, normalised as the dot head does
        ids, t = left_padded(items[lo:hi], times[lo:hi], max_len)
        return F.normalize(model(ids, t)[:, -1, 0], dim=-1)

    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batches": []}
    with torch.inference_mode():
        first = encode(0, 1)[0].tolist()
        for batch in a["batches"]:
            encode(0, min(batch, 8))  # warm-up (a full batch 256 can take seconds)
            times_ms = []
            for _ in range(a["reps"]):
                started = time.perf_counter()
                if batch == 1:
                    for u in range(a["batch1Users"]):
                        encode(u, u + 1)
                else:
                    encode(0, batch)
                times_ms.append((time.perf_counter() - started) * 1000)
            users = a["batch1Users"] if batch == 1 else batch
            result["batches"].append({"batch": batch, "usersPerRep": users, "ms": times_ms})
    result["user0"] = first
    print(json.dumps(result))


if __name__ == "__main__":
    {"export": export, "run": run}[sys.argv[1]](json.loads(sys.argv[2]))
