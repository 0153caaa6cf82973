"""Multi-task quality, every model trained by cangen's trainer with the same settings and time box
and evaluated by full ranking (docs/TRAINING.md "Several labels and scenarios"). Two suites:

- tmall: Tmall multi-behaviour (view / cart / buy; MB-CGCN's split): single-label models per
  behaviour against the unified model and its gated ablation, under the published protocol (each
  held-out test item of a behaviour ranked among all items, the user's training items of that
  behaviour excluded). The data stays in ../shared/data (its licence forbids copies); the
  single-label inputs are filtered copies in a temporary folder.
- simulator: a log of the simulator (`npm run simulate` keeps it in
  results/simulate-model/unified/events.csv, with items.json): the unified model with and without
  scenario heads and scenario input tokens, per label and scenario.

  cd train && PYTHONPATH=$PWD /usr/bin/python3 ../bench/multitask.py tmall [--minutes 12] [--only unified,buy] [--resume --models DIR]
  cd train && PYTHONPATH=$PWD /usr/bin/python3 ../bench/multitask.py simulator --data ../results/simulate-model/unified/events.csv

Writes bench/results/multitask-SUITE-DATE.json and prints the table.
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
TMALL = {"model": "hstu", "dim": 64, "layers": 2, "heads": 1, "maxLen": 100, "useTimes": False, "unordered": True,
          "batchSize": 64, "lr": 2e-3, "warmupSteps": 100, "negatives": 512, "inBatchNegatives": 256, "temperature": 0.2,
          "dropout": 0.2, "valUsers": 2000, "epochs": 200, "patience": 4, "seed": 42, "threads": 2}
TMALL_RUNS = {  # name: (behaviours read (None: all), config overrides)
    "unified": (None, {"tasks": ["view", "cart", "buy"], "target": "buy"}),
    "buy": (("buy",), {"tasks": ["buy"]}),
    "unified-gated": (None, {"tasks": ["view", "cart", "buy"], "target": "buy", "towers": "gated"}),
    "unified-long-term": (None, {"tasks": ["view", "cart", "buy"], "target": "buy", "longTerm": True}),
    "view": (("view",), {"tasks": ["view"]}),
    "cart": (("cart",), {"tasks": ["cart"]}),
}
# The simulator's own settings (lib/simulator/sequence-model.ts hstuFlags), one thread.
SIMULATOR = {"model": "hstu", "dim": 32, "layers": 2, "heads": 1, "maxLen": 20, "epochs": 20, "patience": 5, "lr": 0.003,
             "temperature": 0.2, "batchSize": 64, "negatives": 256, "inBatchNegatives": 64, "warmupSteps": 20, "valUsers": 500,
             "threads": 1, "dropShort": True, "seed": 1}
LABELS = {"tasks": ["engagement", "click", "conversion"], "target": "click"}
SIMULATOR_RUNS = {
    "scenario-heads+input": (None, {**LABELS, "scenarioHeads": True, "scenarioInput": True}),
    "scenario-heads": (None, {**LABELS, "scenarioHeads": True}),
    "scenario-input": (None, {**LABELS, "scenarioInput": True}),
    "no-scenario": (None, LABELS),
}
SUITES = {
    "tmall": (TMALL, TMALL_RUNS, "tmall-multibehavior (MB-CGCN split)",
              "each behaviour's test item ranked among all 11,953 items; the user's training items of that behaviour excluded "
              "('seen'); 'raw' excludes nothing; train files only (view/cart test files never used as input)"),
    "simulator": (SIMULATOR, SIMULATOR_RUNS, "the simulator's logged events",
                  "each user's last event of each label ranked among all ads with that label's head (of the event's scenario "
                  "where heads are per scenario); 'seen': the user's other events of that label excluded"),
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
    p.add_argument("suite", choices=sorted(SUITES))
    p.add_argument("--data", default=None, help="the log (default for tmall: ../shared/data/tmall-multibehavior/interactions.csv)")
    p.add_argument("--item-features", default=None, help="item features file (simulator: items.json beside the log by default)")
    p.add_argument("--minutes", type=float, default=12.0, help="training time box per model")
    p.add_argument("--only", default=None, help="comma-separated runs (default: all of the suite)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--models", default=None, help="keep the models here (default: a temporary folder)")
    p.add_argument("--resume", action="store_true", help="continue the runs kept in --models (a larger --minutes extends the box)")
    p.add_argument("--table", metavar="JSON", help="print the markdown table of a results file and exit (no training)")
    args = p.parse_args()
    if args.table:
        with open(args.table) as f:
            print(markdown(json.load(f)))
        return
    common, runs, dataset, protocol = SUITES[args.suite]
    data = args.data or (DATA if args.suite == "tmall" else None)
    if data is None:
        p.error("--data: the simulator's events.csv")
    features = args.item_features
    if args.suite == "simulator" and features is None and os.path.exists(os.path.join(os.path.dirname(data), "items.json")):
        features = os.path.join(os.path.dirname(data), "items.json")
    today = datetime.date.today().isoformat()
    record = {"dataset": dataset, "data": os.path.abspath(data), "date": today, "machine": machine_info(), "protocol": protocol,
              "settings": {**common, "maxMinutes": args.minutes}, "runs": {}}
    path = os.path.join(args.out, f"multitask-{args.suite}-{today}.json")
    if os.path.exists(path):  # runs measured earlier today stay in the record
        with open(path) as f:
            record["runs"] = json.load(f)["runs"]
    with tempfile.TemporaryDirectory(prefix="cangen-multitask-") as tmp:
        models = args.models or tmp
        for name in (args.only.split(",") if args.only else runs):
            behaviours, overrides = runs[name]
            source = data if behaviours is None else filtered(data, behaviours, os.path.join(tmp, f"{name}.csv"))
            cfg = make_config(**{**common, "maxMinutes": args.minutes, **overrides})
            results = train(cfg, source, os.path.join(models, name), fmt="events-csv", item_features=features, resume=args.resume)
            record["runs"][f"{name}-{args.minutes:g}min"] = {
                "config": {k: cfg[k] for k in ("tasks", "target", "towers", "scenarioHeads", "scenarioInput", "longTerm")},
                "trainSeconds": results["trainSeconds"], "epochs": results["epochs"], "bestEpoch": results["bestEpoch"],
                "stoppedBy": results["stoppedBy"], "parameters": results["parameters"], "test": results["test"]}
            with open(path, "w") as f:
                json.dump(record, f, indent=2)
    print_table(record)


def print_table(record):
    print(f"\n{record['dataset']}, {record['date']}; protocol: {record['protocol']}")
    print(f"{'model':<26} {'target':<20} {'HR@10':>7} {'NDCG@10':>8} {'HR@50':>7} {'NDCG@50':>8}  train s")
    for name, run in record["runs"].items():
        for task, m in run["test"]["seen"].items():
            print(f"{name:<26} {task:<20} {m['hr@10']:7.4f} {m['ndcg@10']:8.4f} {m['hr@50']:7.4f} {m['ndcg@50']:8.4f}  {run['trainSeconds']:.0f}")


def markdown(record):
    """One row per run, HR@10 / NDCG@10 and HR@50 / NDCG@50 ('seen' protocol) per label (the
    per-scenario groups, label@scenario, are in the JSON)."""
    labels = []
    for run in record["runs"].values():
        labels += [t for t in run["test"]["seen"] if t not in labels and "@" not in t]
    head = "| run | epochs (best) | train s | " + " | ".join(f"{t} HR@10 / NDCG@10 | {t} HR@50 / NDCG@50" for t in labels) + " |"
    rows = [head, "|" + " --- |" * (3 + 2 * len(labels))]
    for name, run in record["runs"].items():
        cells = []
        for t in labels:
            m = run["test"]["seen"].get(t)
            cells += [f"{m['hr@10']:.4f} / {m['ndcg@10']:.4f}", f"{m['hr@50']:.4f} / {m['ndcg@50']:.4f}"] if m else ["", ""]
        rows.append(f"| {name} | {run['epochs']} ({run['bestEpoch']}) | {run['trainSeconds']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
