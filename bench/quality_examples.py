#!/usr/bin/python3
"""For `bench/quality.ts --serve`: the test examples of a trained model's data, split exactly as the
trainer split them, and the trainer's own evaluation of the exported model on them (PyTorch), so
that cangen's path (SequenceEncoder + an index) can be scored on the same users and compared.

  PYTHONPATH=train python3 bench/quality_examples.py MODEL_DIR OUT_FILE --data FILE [--item-features FILE]
      [--format F] [--columns C] [--drop-short]

Writes one JSON object: the model's maxLen and per test user the input window (the maxLen most
recent input events: item rows, and times and actions when the log has them), the whole input
history's item rows (the s3rec protocol masks them) and the target row; plus "torch": the trainer's
metrics on the same examples under every protocol.
"""
import argparse
import json

import numpy as np

from cangen_train.data import load_interactions
from cangen_train.evaluate import evaluate
from cangen_train.export import load_model
from cangen_train.features import attach_item_features
from cangen_train.split import leave_one_out, windows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--data", required=True)
    p.add_argument("--item-features")
    p.add_argument("--format", default="auto")
    p.add_argument("--columns")
    p.add_argument("--drop-short", action="store_true")
    a = p.parse_args()
    inter = load_interactions(a.data, a.format, a.columns)
    if a.item_features:
        attach_item_features(inter, a.item_features)
    model = load_model(a.model).eval()
    max_len = model.cfg["maxLen"]
    test = leave_one_out(inter, a.drop_short).test
    torch_metrics = evaluate(model, inter, test)
    ids, valid = windows(inter.items, test.starts, test.ends, max_len)
    users = []
    for r in range(len(test.users)):
        keep = valid[r]
        row = {"window": ids[r][keep].tolist(), "history": inter.items[test.starts[r]:test.ends[r]].tolist(), "target": int(test.targets[r])}
        if inter.times is not None:
            t, _ = windows(inter.times, test.starts[r:r + 1], test.ends[r:r + 1], max_len)
            row["times"] = t[0][keep].astype(np.float64).tolist()
        if inter.actions is not None:
            act, _ = windows(inter.actions, test.starts[r:r + 1], test.ends[r:r + 1], max_len)
            row["actions"] = act[0][keep].tolist()
        users.append(row)
    with open(a.out, "w") as f:
        json.dump({"maxLen": max_len, "numItems": int(inter.num_items), "users": users, "torch": torch_metrics}, f)


if __name__ == "__main__":
    main()
