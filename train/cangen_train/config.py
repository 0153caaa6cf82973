"""Training configuration: one flat dict of plain values, defaults in one place, checked once."""
from .errors import ConfigError
from .metrics import PROTOCOLS

MODELS = ("hstu", "sasrec")
HEADS = ("dot", "mol")
TOWERS = ("separate", "gated")
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
    # Multi-task (docs/TRAINING.md "Several labels and scenarios"): one head per label in `tasks`.
    "tasks": [],  # labels (action names) that get a head; empty: one head over every event
    "taskWeights": {},  # loss weight per label (default 1)
    "target": "",  # label whose validation NDCG@10 drives early stopping (default: the last task)
    "towers": "separate",  # separate: a projection per head | gated: shared experts mixed by per-head gates
    "experts": 4,  # experts of the gated towers
    "scenarioHeads": False,  # one head per (label, scenario), STAR-style: the label's projection times a scenario mask
    "scenarioInput": False,  # each past event's scenario joins its action token (label@scenario)
    "esmm": "",  # "click:conversion": the conversion head is the click head plus a CVR head (pCTCVR = pCTR x pCVR)
    "scenarioWeights": {},  # {scenario: {label: weight}} blend weights written into scorer/config.json
    "scenarioRewards": {},  # {label: reward}: each scenario's blend is chosen on validation to maximise reward in the top 50
    "unordered": False,  # events carry no order: each epoch reads every user's events in a fresh random order
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
    if cfg["tasks"]:
        check_tasks(cfg)
    if cfg["temperature"] <= 0 or cfg["mol"]["temperature"] <= 0:
        raise ConfigError("temperatures must be positive")


def check_tasks(cfg):
    tasks = cfg["tasks"]
    if not isinstance(tasks, list) or not all(isinstance(t, str) and t and "@" not in t for t in tasks) or len(set(tasks)) != len(tasks):
        raise ConfigError(f"Expected --tasks as distinct label names without '@' (e.g. view,cart,buy) but received {tasks!r}")
    if cfg["towers"] not in TOWERS:
        raise ConfigError(f"Expected one of {', '.join(TOWERS)} for towers but received '{cfg['towers']}'")
    if cfg["head"] != "dot" or cfg["interests"] != 1:
        raise ConfigError("--tasks gives every label a dot head of its own: use it with --head dot and --interests 1")
    if not isinstance(cfg["experts"], int) or cfg["experts"] < 1:
        raise ConfigError(f"Expected a positive whole number for experts but received {cfg['experts']!r}")
    for name, weight in cfg["taskWeights"].items():
        if name not in tasks or not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"--task-weights: '{name}': {weight!r}; expected a label of --tasks ({', '.join(tasks)}) and a weight >= 0")
    if cfg["target"] and cfg["target"] not in tasks:
        raise ConfigError(f"--target '{cfg['target']}' is not one of --tasks ({', '.join(tasks)})")
    if cfg["esmm"]:
        pair = cfg["esmm"].split(":")
        if len(pair) != 2 or pair[0] not in tasks or pair[1] not in tasks or pair[0] == pair[1]:
            raise ConfigError(f"--esmm '{cfg['esmm']}': expected 'click:conversion', two different labels of --tasks")
    for name, reward in cfg["scenarioRewards"].items():
        if name not in tasks or not isinstance(reward, (int, float)) or reward < 0:
            raise ConfigError(f"--scenario-rewards: '{name}': {reward!r}; expected a label of --tasks ({', '.join(tasks)}) and a reward >= 0")
    for scenario, weights in cfg["scenarioWeights"].items():
        if not isinstance(weights, dict) or any(t not in tasks or not isinstance(w, (int, float)) for t, w in weights.items()):
            raise ConfigError(f"--scenario-weights: scenario '{scenario}' needs {{label: number}} with labels of --tasks")
