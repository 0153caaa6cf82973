"""Training configuration: one flat dict of plain values, defaults in one place, checked once."""
from .errors import ConfigError
from .metrics import PROTOCOLS

MODELS = ("hstu", "sasrec")
HEADS = ("dot", "mol")
LOSSES = ("sampled", "full")

DEFAULTS = {
    "model": "hstu",  # sequence encoder: hstu | sasrec
    "dim": 64,
    "layers": 2,
    "heads": 1,
    "dropout": 0.2,
    "maxLen": 50,  # most recent events the model reads
    "shortWindow": 0,  # > 0: the encoder attends only to this many most recent events (long-term part sees all)
    "longTerm": False,  # add the long-term pooled interest and the learned fusion
    "interests": 1,  # query embeddings per user
    "timeBuckets": 64,
    "useTimes": True,
    "sideInfo": True,  # use item features when the data has them
    "head": "dot",  # dot | mol
    "temperature": 0.05,
    "l2norm": True,
    "mol": {"queryComponents": 4, "itemComponents": 4, "componentDim": 32, "gatingWidth": 64, "temperature": 0.05},
    "loss": "sampled",  # sampled | full
    "negatives": 128,  # uniform negatives per batch
    "inBatchNegatives": 128,
    "lr": 1e-3,
    "weightDecay": 0.0,
    "warmupSteps": 200,
    "batchSize": 128,
    "epochs": 200,
    "patience": 10,  # epochs without a better validation NDCG@10 before stopping
    "protocol": "s3rec",  # protocol of the validation metric used for early stopping
    "valUsers": 0,  # 0: every validation user; else a fixed random subset of this size
    "seed": 42,
    "maxMinutes": 0.0,  # 0: no time box
    "threads": 0,  # 0: every core
    "device": "auto",
    "dropShort": False,
    "gradClip": 1.0,
}


def make_config(**overrides):
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in overrides.items():
        if key not in cfg:
            raise ConfigError(f"unknown setting '{key}'; known: {', '.join(sorted(cfg))}")
        if value is not None:
            cfg[key] = {**cfg[key], **value} if isinstance(cfg[key], dict) else value
    check(cfg)
    return cfg


def check(cfg):
    def choice(key, allowed):
        if cfg[key] not in allowed:
            raise ConfigError(f"Expected one of {', '.join(allowed)} for {key} but received '{cfg[key]}'")

    choice("model", MODELS)
    choice("head", HEADS)
    choice("loss", LOSSES)
    choice("protocol", PROTOCOLS)
    for key in ("dim", "layers", "heads", "maxLen", "batchSize", "epochs", "interests"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"Expected a positive whole number for {key} but received {cfg[key]!r}")
    if cfg["dim"] % cfg["heads"]:
        raise ConfigError(f"dim {cfg['dim']} must be divisible by heads {cfg['heads']}")
    if not 0 <= cfg["dropout"] < 1:
        raise ConfigError(f"Expected dropout in [0, 1) but received {cfg['dropout']}")
    if cfg["head"] == "mol" and cfg["loss"] == "full":
        raise ConfigError("the MoL head scores every (position, item) pair through its gating network: use --loss sampled with it")
    if cfg["loss"] == "sampled" and cfg["negatives"] + cfg["inBatchNegatives"] < 1:
        raise ConfigError("sampled softmax needs negatives: set --negatives or --in-batch-negatives above 0")
    if cfg["temperature"] <= 0 or cfg["mol"]["temperature"] <= 0:
        raise ConfigError("temperatures must be positive")
