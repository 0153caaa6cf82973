"""The training loop: batches of users' most recent windows, every position predicting the next
event, AdamW with linear warm-up, validation NDCG@10 after each epoch with early stopping, a
checkpoint after each epoch (resumable), a time box that still exports the best model, and a test
evaluation of the best model under every protocol."""
import copy
import json
import os
import platform
import resource
import time

import numpy as np
import torch

from .config import DEFAULTS
from .data import load_interactions
from .errors import ConfigError
from .export import export_model
from .features import attach_item_features
from .models.user_model import UserModel
from .multitask import MultiTask
from .objectives import NextItem
from .progress import Progress


RESUMABLE_CHANGES = ("maxMinutes", "threads", "device", "epochs", "patience")  # may differ when resuming


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible to PyTorch {torch.__version__}")
    return torch.device(name)


def machine_info():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "loadAverage": [round(x, 2) for x in os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_data(data, fmt="auto", columns=None, item_features=None):
    interactions = load_interactions(data, fmt, columns)
    if item_features:
        attach_item_features(interactions, item_features)
    return interactions


def build_model(cfg, objective, interactions, device):
    return UserModel(cfg, interactions.num_items, objective.num_actions, interactions.item_features,
                     len(interactions.feature_names), objective.scenario_names).to(device)


def _atomic_save(obj, path):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def train(cfg, data, out_dir, fmt="auto", columns=None, item_features=None, resume=False, log=None):
    """Trains, evaluates and exports; returns the results dict (also written to out_dir/results.json)."""
    progress = Progress(log)
    wall_start = time.time()
    machine_at_start = machine_info()
    torch.set_num_threads(cfg["threads"] or os.cpu_count() or 1)
    device = pick_device(cfg["device"])
    os.makedirs(out_dir, exist_ok=True)
    checkpoint_path = os.path.join(out_dir, "checkpoint.pt")
    interactions = load_data(data, fmt, columns, item_features)
    progress.say(f"data {data}: {interactions.stats()}")
    objective = MultiTask(interactions, cfg) if cfg["tasks"] else NextItem(interactions, cfg)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, objective, interactions, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weightDecay"])
    # epoch: epochs finished so far; bestEpoch counts from 1
    state = {"epoch": 0, "step": 0, "best": -1.0, "bestEpoch": -1, "badEpochs": 0, "trainSeconds": 0.0, "history": []}
    best_state = None
    if resume and os.path.exists(checkpoint_path):
        saved = torch.load(checkpoint_path, map_location=device)
        # a setting newer than the checkpoint counts as its default there
        changed = sorted(k for k in cfg if k not in RESUMABLE_CHANGES and saved["config"].get(k, DEFAULTS.get(k)) != cfg[k])
        if changed:
            raise ConfigError(f"{checkpoint_path} was trained with other settings ({', '.join(changed)}); "
                              f"resume with the same flags or use a new --out")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state, best_state = saved["state"], saved["best"]
        progress.say(f"resumed from epoch {state['epoch']} (best val ndcg@10 {state['best']:.4f} at epoch {state['bestEpoch']})")
    budget = cfg["maxMinutes"] * 60.0
    n_params = sum(p.numel() for p in model.parameters())
    progress.say(f"model {cfg['model']} head {cfg['head']} loss {cfg['loss']}: {n_params:,} parameters on {device}")
    if state.get("finished") == "time box":
        del state["finished"]  # a resumed run gets the rest of a larger --max-minutes
    stopped = state.get("finished", "epochs")
    while not state.get("finished") and state["epoch"] < cfg["epochs"]:
        if budget and state["trainSeconds"] >= budget:
            stopped = "time box"
            break
        epoch = state["epoch"]
        epoch_start = time.time()
        model.train()
        batches = objective.epoch_batches(epoch)
        total_loss, count, out_of_time = 0.0, 0, False
        progress.start_epoch(epoch, cfg["epochs"], len(batches))
        for b, rows in enumerate(batches):
            loss = objective.loss(model, rows, device)
            for group in optimizer.param_groups:
                group["lr"] = cfg["lr"] * min(1.0, (state["step"] + 1) / max(1, cfg["warmupSteps"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["gradClip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["gradClip"])
            optimizer.step()
            state["step"] += 1
            total_loss += float(loss)
            count += 1
            progress.batch(b + 1, total_loss / count)
            if budget and state["trainSeconds"] + (time.time() - epoch_start) > budget:
                out_of_time = True
                break
        val = objective.validate(model, device)
        epoch_seconds = time.time() - epoch_start
        state["trainSeconds"] += epoch_seconds
        score = val["ndcg@10"]
        improved = score > state["best"]
        if improved:
            state.update(best=score, bestEpoch=epoch + 1, badEpochs=0)
            best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
        else:
            state["badEpochs"] += 1
        state["history"].append({"epoch": epoch + 1, "loss": round(total_loss / max(count, 1), 5), "batches": count,
                                 "complete": not out_of_time, "seconds": round(epoch_seconds, 2),
                                 "val": {k: round(v, 5) for k, v in val.items() if k in ("hr@10", "ndcg@10", "hr@50", "ndcg@50")}})
        state["epoch"] = epoch + 1
        progress.end_epoch(epoch, total_loss / max(count, 1), val, improved, state, budget)
        if out_of_time:
            state["finished"] = stopped = "time box"
        elif state["badEpochs"] >= cfg["patience"]:
            state["finished"] = stopped = "early stopping"
        _atomic_save({"config": cfg, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                      "best": best_state}, checkpoint_path)
    model.load_state_dict(best_state)
    progress.say(f"stopped by {stopped}; evaluating the best model (epoch {state['bestEpoch']}) on the test set")
    eval_start = time.time()
    test, validation = objective.final(model, device)
    eval_seconds = time.time() - eval_start
    complete_epochs = [h["seconds"] for h in state["history"] if h["complete"]]
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    results = {
        "config": cfg, "data": {"path": os.path.abspath(data), "format": interactions.format, **interactions.stats(),
                                **objective.counts()},
        "parameters": n_params, "device": str(device), "machineAtStart": machine_at_start, "machine": machine_info(),
        "epochs": state["epoch"], "bestEpoch": state["bestEpoch"], "stoppedBy": stopped,
        "trainSeconds": round(state["trainSeconds"], 1), "secondsPerEpoch": round(float(np.mean(complete_epochs)), 2) if complete_epochs else None,
        "testEvalSeconds": round(eval_seconds, 1), "wallSecondsThisRun": round(time.time() - wall_start, 1),
        "peakMemoryMiB": round(peak_rss, 1),
        "peakGpuMemoryMiB": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if device.type == "cuda" else None,
        "validation": validation, "test": test, "history": state["history"],
    }
    weights = objective.scenario_weights(model, device)
    if weights:
        results.update(scenarioWeights=weights, blendSearch=objective.blends)
    export_model(model, out_dir, interactions, {k: results[k] for k in ("epochs", "bestEpoch", "stoppedBy", "trainSeconds")},
                 objective.action_names, weights)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    for name, metrics in objective.headline(test):
        progress.say(f"test ({name}): " + ", ".join(f"{k} {metrics[k]:.4f}" for k in ("hr@10", "ndcg@10", "hr@50", "ndcg@50", "hr@200", "ndcg@200")))
    progress.say(f"exported {out_dir}")
    return results
