"""Full-ranking evaluation of a user model over all items, under one or more protocols."""
import numpy as np
import torch

from .metrics import PROTOCOLS, mask_scores, summarize, target_ranks
from .split import fill_pad_times, windows


def _tensor(a, device):
    return torch.as_tensor(np.ascontiguousarray(a), device=device)


def batch_inputs(events, starts, ends, length, device):
    """Right-aligned input windows (ids, times, actions) of `events` (anything with items, times
    and actions per-event arrays) for events [starts, ends), trimmed to the longest row so
    short-history batches stay cheap."""
    ids, valid = windows(events.items, starts, ends, length)
    width = max(1, int(valid.sum(1).max())) if len(ids) else 1
    ids = ids[:, -width:]
    times = actions = None
    if events.times is not None:
        times = _tensor(fill_pad_times(windows(events.times, starts, ends, length)[0][:, -width:], ids), device)
    if events.actions is not None:
        actions = _tensor(windows(events.actions, starts, ends, length)[0][:, -width:], device)
    return _tensor(ids, device), times, actions


@torch.no_grad()
def evaluate(model, interactions, examples, protocols=PROTOCOLS, batch_size=256, users=None, device="cpu"):
    """Ranks each example's target among all items; returns {protocol: metrics}.
    `users`: optional indices into the examples (a fixed validation subset)."""
    was_training = model.training
    model.eval()
    pick = np.arange(len(examples.users)) if users is None else np.asarray(users)
    pick = pick[np.argsort(examples.ends[pick] - examples.starts[pick], kind="stable")]  # similar lengths share a batch
    max_len = model.cfg["maxLen"]
    table = model.items.table()
    ranks = {p: [] for p in protocols}
    for s in range(0, len(pick), batch_size):
        rows = pick[s:s + batch_size]
        starts, ends, targets = examples.starts[rows], examples.ends[rows], _tensor(examples.targets[rows], device)
        ids, times, actions = batch_inputs(interactions, starts, ends, max_len, device)
        queries = model(ids, times, actions)[:, -1]  # (B, K, d)
        base = torch.cat([queries.new_zeros((len(rows), 1)), model.head.cross(queries, table[1:])], dim=1)
        full, _ = windows(interactions.items, starts, ends, int((ends - starts).max()))
        full = _tensor(full, device)
        for p in protocols:
            scores = mask_scores(base.clone(), p, full, ids)
            ranks[p].append(target_ranks(scores, targets).cpu())
    model.train(was_training)
    return {p: summarize(torch.cat(r)) for p, r in ranks.items()}
