"""The exported model directory (format "cangen-user-model", version 1; docs/TRAINING.md lists
every tensor name and shape):

  config.json          architecture, vocabulary sizes, head, protocol and training summary
  model.safetensors    every weight of the user model (state_dict names), plus `item_embeddings`
                       (N + 1) x d (the item tower's output; L2-normalised for a normalising dot
                       head) and, with side information, `items.feature_ids` (N + 1) x F (I64)
  items.txt            the original item id of row i on line i (row 0, padding, is not listed)
  actions.txt          the action names of action index a on line a (when the log had actions)
  scorer/              the head as a cangen `LearnedScorer` model directory (docs/SCORERS.md); a
                       multi-task model's heads are its `dot` heads with per-head projections
                       (`dot.proj`, H x d x d) and the scenarios' blend weights
"""
import json
import os

import torch
import torch.nn.functional as F

from .errors import ModelFormatError
from .models.user_model import UserModel
from .safetensors import read_safetensors, write_safetensors

FORMAT, VERSION = "cangen-user-model", 1


def item_embeddings(model):
    with torch.no_grad():
        table = model.items.table()
        if model.task_heads is not None or (model.mol is None and model.head.normalize):
            table = F.normalize(table, dim=-1)
    return table


def scorer_config(cfg, heads=None, scenarios=None):
    """The LearnedScorer config of the head: u . x for dot (vectors pre-normalised), MoL, or the
    multi-task heads (P_h u) . x blended by scenario."""
    base = {"format": "cangen-scorer", "version": 1, "userDim": cfg["dim"], "itemDim": cfg["dim"], "heads": heads or ["score"],
            "activation": "silu"}
    if heads:
        return {**base, "kind": "dot", "dot": {"projection": True}, **({"scenarios": scenarios} if scenarios else {})}
    if cfg["head"] == "mol":
        return {**base, "kind": "mol", "mol": dict(cfg["mol"])}
    return {**base, "kind": "dot", "dot": {"projection": False}}


def export_model(model, out_dir, interactions, summary=None, action_names=None, scenario_weights=None):
    """Writes the model directory; `action_names` is the input-token vocabulary (default the
    log's actions), `scenario_weights` the multi-task scorer's {scenario: {head: weight}}."""
    action_names = interactions.action_names if action_names is None else action_names
    os.makedirs(os.path.join(out_dir, "scorer"), exist_ok=True)
    cfg = dict(model.cfg)
    tensors = {k: v for k, v in model.state_dict().items()}
    tensors["item_embeddings"] = item_embeddings(model)
    if model.items.features is not None:
        tensors["items.feature_ids"] = model.items.feature_ids
    heads = model.task_heads.names if model.task_heads is not None else None
    config = {"format": FORMAT, "version": VERSION, **cfg, "numItems": interactions.num_items,
              "numActions": len(action_names), "numFeatures": len(interactions.feature_names),
              "normalizeQuery": heads is not None or (cfg["head"] == "dot" and cfg.get("l2norm", True)),
              "items": "items.txt", "scorer": "scorer"}
    if heads:
        config.update(headNames=heads, scenarioNames=model.task_heads.scenarios)
    if summary:
        config["training"] = summary
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": FORMAT, "version": VERSION})
    with open(os.path.join(out_dir, "items.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{item}\n" for item in interactions.item_ids))
    if action_names:
        with open(os.path.join(out_dir, "actions.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{a}\n" for a in action_names))
    head_tensors = {k: v for k, v in tensors.items() if k.startswith("mol.")}
    if heads:
        with torch.no_grad():
            head_tensors = {"dot.proj": model.task_heads.matrices().detach().cpu()}
    write_safetensors(os.path.join(out_dir, "scorer", "model.safetensors"), head_tensors)
    with open(os.path.join(out_dir, "scorer", "config.json"), "w") as f:
        json.dump(scorer_config(cfg, heads, scenario_weights), f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


MODEL_KEYS = ("model", "dim", "layers", "heads", "dropout", "maxLen", "head")


def load_model(out_dir):
    """Rebuilds the UserModel of an exported directory; a missing or mismatched tensor raises."""
    path = os.path.join(out_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelFormatError(f"{path}: cannot read the model config ({e})") from None
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ModelFormatError(f"{path}: format {config.get('format')} v{config.get('version')}, expected {FORMAT} v{VERSION}")
    missing = [k for k in MODEL_KEYS if k not in config]
    if missing:
        raise ModelFormatError(f"{path}: missing fields {missing}")
    tensors = read_safetensors(os.path.join(out_dir, "model.safetensors"))
    features = tensors.pop("items.feature_ids", None)
    tensors.pop("item_embeddings", None)
    model = UserModel(config, config["numItems"], config["numActions"], features, config["numFeatures"], config.get("scenarioNames", ()))
    expected = model.state_dict()
    absent = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if absent or extra:
        raise ModelFormatError(f"{out_dir}/model.safetensors: missing tensors {absent[:5]}, unexpected {extra[:5]}")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise ModelFormatError(f"{out_dir}/model.safetensors: tensor '{name}' has shape {list(t.shape)}, "
                                   f"config.json implies {list(expected[name].shape)}")
    model.load_state_dict(tensors)
    model.eval()
    return model
