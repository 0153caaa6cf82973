"""Command line: `python3 -m cangen_train train --data FILE --model hstu --out DIR [flags]`.

Errors print one line `cangen-train: CODE: message` on stderr and exit with status 2."""
import argparse
import json
import sys

from .config import DEFAULTS, HEADS, LOSSES, MODELS, make_config
from .data import FORMATS
from .errors import ConfigError, TrainError
from .metrics import PROTOCOLS

FLAGS = [  # (flag, config key, type, help)
    ("--model", "model", str, f"sequence encoder: {' | '.join(MODELS)}"),
    ("--head", "head", str, f"similarity head: {' | '.join(HEADS)}"),
    ("--loss", "loss", str, f"{' | '.join(LOSSES)} softmax"),
    ("--dim", "dim", int, "embedding width"),
    ("--layers", "layers", int, "encoder layers"),
    ("--heads", "heads", int, "attention heads"),
    ("--dropout", "dropout", float, "dropout rate"),
    ("--max-len", "maxLen", int, "most recent events the model reads"),
    ("--short-window", "shortWindow", int, "encoder attends to this many most recent events (0 = all of --max-len)"),
    ("--interests", "interests", int, "query embeddings per user (multi-interest when > 1)"),
    ("--time-buckets", "timeBuckets", int, "HSTU time-gap buckets"),
    ("--temperature", "temperature", float, "softmax temperature of the dot head"),
    ("--negatives", "negatives", int, "uniform negatives per batch (sampled softmax)"),
    ("--in-batch-negatives", "inBatchNegatives", int, "in-batch negatives per batch (sampled softmax)"),
    ("--lr", "lr", float, "AdamW learning rate"),
    ("--weight-decay", "weightDecay", float, "AdamW weight decay"),
    ("--warmup-steps", "warmupSteps", int, "linear learning-rate warm-up steps"),
    ("--batch-size", "batchSize", int, "users per batch"),
    ("--epochs", "epochs", int, "maximum epochs"),
    ("--patience", "patience", int, "epochs without a better validation NDCG@10 before stopping"),
    ("--protocol", "protocol", str, f"validation protocol for early stopping: {' | '.join(PROTOCOLS)}"),
    ("--val-users", "valUsers", int, "validate on a fixed random subset of this many users (0 = all)"),
    ("--seed", "seed", int, "random seed"),
    ("--max-minutes", "maxMinutes", float, "time box for training (the best model so far is still exported)"),
    ("--threads", "threads", int, "CPU threads (0 = every core)"),
    ("--device", "device", str, "auto | cpu | cuda | cuda:N"),
    ("--target", "target", str, "multi-task: the label whose validation NDCG@10 drives early stopping (default: the last of --tasks)"),
    ("--towers", "towers", str, "multi-task heads: separate (a projection per label) | gated (shared experts, per-label gates)"),
    ("--experts", "experts", int, "experts of --towers gated"),
    ("--esmm", "esmm", str, "multi-task: 'click:conversion' makes the conversion head the click head plus a CVR head"),
]
SWITCHES = [  # (flag, config key, value, help)
    ("--long-term", "longTerm", True, "add the long-term interest and the learned fusion"),
    ("--no-side-info", "sideInfo", False, "ignore item features even when given"),
    ("--no-times", "useTimes", False, "HSTU without the time-gap bias"),
    ("--no-l2norm", "l2norm", False, "raw dot product instead of cosine in the dot head"),
    ("--drop-short", "dropShort", True, "skip users with a single event instead of failing"),
    ("--scenario-heads", "scenarioHeads", True, "multi-task: one head per (label, scenario), named label@scenario"),
    ("--scenario-input", "scenarioInput", True, "multi-task: each past event's scenario joins its action token (label@scenario)"),
    ("--unordered", "unordered", True, "events have no order (no timestamps): each epoch reads users' events in a new random order"),
]
JSON_FLAGS = [  # (flag, config key, help)
    ("--mol", "mol", "MoL head settings, e.g. '{\"queryComponents\": 8}'"),
    ("--task-weights", "taskWeights", "multi-task loss weight per label, e.g. '{\"buy\": 2}'"),
    ("--scenario-rewards", "scenarioRewards", "reward per label, e.g. '{\"click\": 1, \"conversion\": 3}': each scenario's blend is chosen on validation to earn the most"),
    ("--scenario-weights", "scenarioWeights", "blend weights written into scorer/config.json, e.g. '{\"search\": {\"click\": 1, \"conversion\": 3}}'"),
]


def parser():
    p = argparse.ArgumentParser(prog="cangen train", description="Train a sequential user model (HSTU or SASRec), evaluate "
                                "it by full ranking, and export it as a cangen model directory.")
    p.add_argument("--data", required=True, help="interaction file")
    p.add_argument("--format", default="auto", choices=FORMATS, help="input format (default: from the file name)")
    p.add_argument("--columns", help="column names of a CSV/TSV without a header, e.g. user,item,-,action,timestamp")
    p.add_argument("--item-features", help="item side information (JSON, movies.dat, movies.csv, TSV)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--tasks", help="multi-task: comma-separated labels (action names) that get a head, e.g. view,cart,buy")
    for flag, key, text in JSON_FLAGS:
        p.add_argument(flag, dest=key, help=f"{text} (JSON)")
    for flag, key, kind, text in FLAGS:
        p.add_argument(flag, dest=key, type=kind, help=f"{text} (default {DEFAULTS[key]})")
    for flag, key, value, text in SWITCHES:
        p.add_argument(flag, dest=key, action="store_const", const=value, help=text)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        overrides = {key: getattr(args, key) for _, key, _, _ in FLAGS + SWITCHES}
        for flag, key, _ in JSON_FLAGS:
            if getattr(args, key):
                try:
                    overrides[key] = json.loads(getattr(args, key))
                except ValueError as e:
                    raise ConfigError(f"{flag}: not JSON ({e})") from None
        if args.tasks:
            overrides["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
        cfg = make_config(**overrides)
        from .trainer import train  # torch is imported only once the flags are known to be good

        train(cfg, args.data, args.out, args.format, args.columns, args.item_features, args.resume)
    except TrainError as e:
        print(f"cangen-train: {e.code}: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cangen-train: interrupted; the last finished epoch is in the checkpoint (--resume continues)", file=sys.stderr)
        return 130
    return 0
