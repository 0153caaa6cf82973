"""For test/sequence-encoder.test.ts: exports random-weight user models with cangen's trainer and
writes what the PyTorch module gives for a set of histories, so the Node side can check that
cangen's native SequenceEncoder computes the same queries.

Run from train/ (so that cangen_train imports): python3 sequence_parity.py OUT_DIR
Writes OUT_DIR/<case>/ (the export) and OUT_DIR/expected.json.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from cangen_train.config import make_config
from cangen_train.data import load_interactions
from cangen_train.export import export_model, load_model
from cangen_train.features import attach_item_features
from cangen_train.models.user_model import UserModel
from cangen_train.trainer import train

ITEMS, USERS = 23, 8


def write_log(path, actions):
    rng = np.random.default_rng(1)
    header = "user,item,timestamp" + (",action" if actions else "") + "\n"
    rows = []
    for u in range(USERS):
        for k in range(12):
            item = (u * 5 + k * 3) % ITEMS if k else u % ITEMS  # every item appears
            row = f"u{u},i{item},{k * 60 + u}"
            rows.append(row + (f",{['view', 'click', 'buy'][int(rng.integers(3))]}" if actions else ""))
    rows += [f"u0,i{i},{999 + i}" + (",view" if actions else "") for i in range(ITEMS)]
    with open(path, "w") as f:
        f.write(header + "\n".join(rows) + "\n")


CASES = [
    dict(name="hstu-actions-times-features", model="hstu", actions=True, times=True, features=True, dim=16, heads=2,
         layers=2, maxLen=8, head="dot"),
    dict(name="hstu-long-interests-window", model="hstu", actions=False, times=True, features=False, dim=16, heads=1,
         layers=3, maxLen=10, head="mol", longTerm=True, interests=3, shortWindow=4),
    dict(name="hstu-no-times-actions-long", model="hstu", actions=True, times=False, features=True, dim=32, heads=4,
         layers=2, maxLen=12, head="dot", longTerm=True, interests=2),
    dict(name="sasrec-actions-long-interests", model="sasrec", actions=True, times=False, features=False, dim=16,
         heads=2, layers=2, maxLen=8, head="dot", longTerm=True, interests=2),
    dict(name="sasrec-features-window-mol", model="sasrec", actions=False, times=True, features=True, dim=24, heads=3,
         layers=2, maxLen=9, head="mol", shortWindow=3),
    # Trained by the trainer for a few epochs (padding rows stay zero, weights as training leaves them).
    dict(name="hstu-trained", model="hstu", actions=True, times=True, features=False, dim=16, heads=2, layers=2,
         maxLen=8, head="dot", longTerm=True, trained=True),
]
ARCH_KEYS = ("model", "dim", "heads", "layers", "maxLen", "head", "longTerm", "interests", "shortWindow")


def histories(rng, max_len, num_items, num_actions):
    """Users' event lists (oldest first): lengths 1, 2, L-1, L, L+5, unknown ids among known ones,
    no events, only unknown events. Times are shuffled (not monotonic) and one is negative."""
    users = []
    lengths = [1, 2, max_len - 1, max_len, max_len + 5, max_len + 2, 0, 3]
    for n, length in enumerate(lengths):
        items = rng.integers(1, num_items + 1, size=length)
        if n == 5:
            items[[0, 3, length - 2]] = [0, num_items + 4, -1]  # unknown rows, skipped
        if n == 7:
            items[:] = [0, num_items + 1, -7]
        times = rng.integers(-50, 10_000_000, size=length)
        actions = rng.integers(0, num_actions + 1, size=length) if num_actions else np.zeros(length, np.int64)
        users.append({"items": items.tolist(), "times": times.tolist(), "actions": actions.tolist()})
    return users


def reference(model, users, max_len, num_items, use_times, use_actions, normalize):
    """PyTorch's queries at the last event: known events only, the most recent max_len, right-aligned
    and left-padded as the trainer's evaluation builds its windows."""
    b = len(users)
    ids = torch.zeros(b, max_len, dtype=torch.long)
    times = torch.zeros(b, max_len, dtype=torch.long)
    actions = torch.zeros(b, max_len, dtype=torch.long)
    for u, h in enumerate(users):
        known = [k for k, i in enumerate(h["items"]) if 1 <= i <= num_items][-max_len:]
        n = len(known)
        if n == 0:
            continue
        ids[u, max_len - n:] = torch.tensor([h["items"][k] for k in known])
        t = torch.tensor([h["times"][k] for k in known])
        times[u, max_len - n:] = t
        times[u, :max_len - n] = t[0]  # as evaluate.batch_inputs pads
        actions[u, max_len - n:] = torch.tensor([h["actions"][k] for k in known])
    with torch.no_grad():
        q = model(ids, times if use_times else None, actions if use_actions else None)[:, -1]
        if normalize:
            q = F.normalize(q, dim=-1)
    return q.flatten().tolist()


def main(out_dir):
    result = []
    for case in CASES:
        case_dir = os.path.join(out_dir, case["name"])
        os.makedirs(case_dir, exist_ok=True)
        log = os.path.join(case_dir, "log.csv")
        write_log(log, case["actions"])
        inter = load_interactions(log)
        if case["features"]:
            feats = os.path.join(case_dir, "features.json")
            with open(feats, "w") as f:  # 0 to 3 features per item, so some items have none
                json.dump({f"i{k}": [f"c{k % 4}", f"b{k % 3}", "x"][: k % 4] for k in range(ITEMS)}, f)
            attach_item_features(inter, feats)
        cfg = make_config(**{k: case[k] for k in ARCH_KEYS if k in case})
        if case.get("trained"):
            cfg = make_config(**{k: case[k] for k in ARCH_KEYS if k in case}, epochs=3, threads=1, device="cpu",
                              negatives=8, inBatchNegatives=8, batchSize=4)
            with open(os.devnull, "w") as quiet:
                train(cfg, log, os.path.join(case_dir, "model"), log=quiet)
            model = load_model(os.path.join(case_dir, "model"))
        else:
            torch.manual_seed(len(result))
            model = UserModel(cfg, inter.num_items, len(inter.action_names), inter.item_features, len(inter.feature_names)).eval()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.1)  # every weight off its initial value, padding rows included
            export_model(model, os.path.join(case_dir, "model"), inter)
        rng = np.random.default_rng(len(result))
        users = histories(rng, cfg["maxLen"], inter.num_items, len(inter.action_names))
        normalize = cfg["head"] == "dot" and cfg["l2norm"]
        args = (users, cfg["maxLen"], inter.num_items, case["times"], case["actions"], normalize)
        result.append({
            "name": case["name"], "dir": os.path.join(case_dir, "model"), "times": case["times"], "actions": case["actions"],
            "interests": cfg["interests"], "dim": cfg["dim"], "users": users,
            "float64": reference(model.double(), *args),
            "float32": reference(model.float(), *args),
        })
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
