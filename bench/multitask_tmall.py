"""Tmall multi-behaviour (view / cart / buy; MB-CGCN's split): single-label models per behaviour
against the unified model and its ablations, every one trained by cangen's trainer with the same
settings and time box, evaluated by full ranking under the published protocol (each held-out
test item of a behaviour ranked among all items, the user's training items of that behaviour
excluded). Writes bench/results/multitask-tmall-DATE.json and prints the table.

  cd train && PYTHONPATH=$PWD /usr/bin/python3 ../bench/multitask_tmall.py [--minutes 12] [--only unified,buy]

The data stays in ../shared/data (its licence forbids copies); the single-label inputs are
filtered copies written to a temporary folder for the run.
"""
import argparse
import csv
import datetime
import json
import os
import tempfile

from cangen_train.config import make_config
from cangen_train.trainer import machine_info, train

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "tmall-multibehavior", "interactions.csv")
COMMON = {"model": "hstu", "dim": 64, "layers": 2, "heads": 1, "maxLen": 100, "useTimes": False, "unordered": True,
          "batchSize": 64, "lr": 2e-3, "warmupSteps": 100, "negatives": 512, "inBatchNegatives": 256, "temperature": 0.2,
          "dropout": 0.2, "valUsers": 2000, "epochs": 200, "patience": 4, "seed": 42, "threads": 2}
RUNS = {  # name: (behaviours read, config overrides)
    "unified": (("view", "cart", "buy"), {"tasks": ["view", "cart", "buy"], "target": "buy"}),
    "buy": (("buy",), {"tasks": ["buy"]}),
    "unified-gated": (("view", "cart", "buy"), {"tasks": ["view", "cart", "buy"], "target": "buy", "towers": "gated"}),
    "view": (("view",), {"tasks": ["view"]}),
    "cart": (("cart",), {"tasks": ["cart"]}),
}


def filtered(source, behaviours, out):
    with open(source, newline="") as f, open(out, "w", newline="") as g:
        rows = csv.reader(f)
        w = csv.writer(g)
        header = next(rows)
        w.writerow(header)
        b = header.index("behavior")
        w.writerows(r for r in rows if r[b] in behaviours)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=12.0, help="training time box per model")
    p.add_argument("--only", default=",".join(RUNS), help="comma-separated runs")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--models", default=None, help="keep the models here (default: a temporary folder)")
    p.add_argument("--resume", action="store_true", help="continue the runs kept in --models (a larger --minutes extends the box)")
    args = p.parse_args()
    today = datetime.date.today().isoformat()
    record = {"dataset": "tmall-multibehavior (MB-CGCN split)", "date": today, "machine": machine_info(),
              "protocol": "each behaviour's test item ranked among all 11,953 items; the user's training items of that behaviour "
                          "excluded ('seen'); 'raw' excludes nothing; train files only (view/cart test files never used as input)",
              "settings": {**COMMON, "maxMinutes": args.minutes}, "runs": {}}
    path = os.path.join(args.out, f"multitask-tmall-{today}.json")
    if os.path.exists(path):  # runs measured earlier today stay in the record
        with open(path) as f:
            record["runs"] = json.load(f)["runs"]
    with tempfile.TemporaryDirectory(prefix="cangen-tmall-") as tmp:
        models = args.models or tmp
        for name in args.only.split(","):
            behaviours, overrides = RUNS[name]
            data = DATA if len(behaviours) == 3 else filtered(DATA, behaviours, os.path.join(tmp, f"{name}.csv"))
            cfg = make_config(**{**COMMON, "maxMinutes": args.minutes, **overrides})
            results = train(cfg, data, os.path.join(models, name), fmt="events-csv", resume=args.resume)
            record["runs"][name] = {"config": {k: cfg[k] for k in ("tasks", "target", "towers")}, "trainSeconds": results["trainSeconds"],
                                    "epochs": results["epochs"], "bestEpoch": results["bestEpoch"], "stoppedBy": results["stoppedBy"],
                                    "parameters": results["parameters"], "test": results["test"]}
            with open(path, "w") as f:
                json.dump(record, f, indent=2)
    print_table(record)


def print_table(record):
    print(f"\nTmall, {record['date']}; protocol: {record['protocol']}")
    print(f"{'model':<15} {'target':<6} {'HR@10':>7} {'NDCG@10':>8} {'HR@50':>7} {'NDCG@50':>8}  train s")
    for name, run in record["runs"].items():
        for task, m in run["test"]["seen"].items():
            print(f"{name:<15} {task:<6} {m['hr@10']:7.4f} {m['ndcg@10']:8.4f} {m['hr@50']:7.4f} {m['ndcg@50']:8.4f}  {run['trainSeconds']:.0f}")


if __name__ == "__main__":
    main()
