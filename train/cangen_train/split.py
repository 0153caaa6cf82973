"""Leave-one-out split and the padded windows the models read.

For a user with events e_1..e_n: test target e_n (input e_1..e_{n-1}), validation target e_{n-1}
(input e_1..e_{n-2}), training sequence e_1..e_{n-2} (each event predicts the next one). A user
needs two events for a test example, three for a validation example, four to add training pairs.
Windows are right-aligned: the most recent event is always in the last column, padding (0) left.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DataFormatError


@dataclass
class Examples:
    """Evaluation examples: user u's input is events [starts[u], ends[u]) and target is targets[u]."""

    users: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    targets: np.ndarray


@dataclass
class LeaveOneOut:
    train_users: np.ndarray  # users with at least one training pair
    train_ends: np.ndarray  # their training sequence is events [offsets[u], train_ends)
    validation: Examples
    test: Examples


def leave_one_out(interactions, drop_short=False):
    """Splits every user; a user with one event is an error unless `drop_short` (then skipped)."""
    lengths = interactions.lengths
    short = np.flatnonzero(lengths < 2)
    if len(short) and not drop_short:
        user = interactions.user_ids[short[0]]
        raise DataFormatError(f"user '{user}' has {lengths[short[0]]} event(s) ({len(short)} such users); leave-one-out needs "
                              f"at least 2 per user: filter the log or pass --drop-short to skip them")
    starts = interactions.offsets[:-1]
    ends = interactions.offsets[1:]
    users = np.arange(interactions.num_users)

    def examples(min_length, back):
        keep = lengths >= min_length
        u = users[keep]
        target_pos = ends[keep] - back
        return Examples(u, starts[keep], target_pos, interactions.items[target_pos])

    train_keep = lengths >= 4
    return LeaveOneOut(users[train_keep], ends[train_keep] - 2, examples(3, 2), examples(2, 1))


def windows(values, starts, ends, length):
    """Right-aligned windows: row r holds values[max(starts[r], ends[r]-length) : ends[r]], left-padded with 0."""
    ends = np.asarray(ends, np.int64)
    idx = ends[:, None] - length + np.arange(length, dtype=np.int64)[None, :]
    valid = idx >= np.asarray(starts, np.int64)[:, None]
    out = values[np.clip(idx, 0, max(len(values) - 1, 0))] if len(values) else np.zeros(idx.shape, np.int64)
    return np.where(valid, out, 0), valid


def fill_pad_times(times, ids):
    """Padded slots take the row's first real time so time gaps to them are 0 (they are masked)."""
    first = times[np.arange(len(times)), np.argmax(ids > 0, axis=1)]
    return np.where(ids > 0, times, first[:, None])


class TrainingWindows:
    """Every training row's most recent `length` events, padded once up front. `columns` maps a
    name to a per-event array (None: absent); "ids" (item ids, 0 = pad) is required, "times" gets
    its padding filled, other columns pad with 0."""

    def __init__(self, columns, starts, ends, length):
        self.columns = {}
        for name, values in columns.items():
            self.columns[name] = None if values is None else windows(values, starts, ends, length)[0]
        ids = self.columns["ids"]
        if self.columns.get("times") is not None:
            self.columns["times"] = fill_pad_times(self.columns["times"], ids)

    def __len__(self):
        return len(self.columns["ids"])

    def epoch_batches(self, batch_size, rng):
        """Rows grouped by history length (random order within a length), batches shuffled: a batch
        is trimmed to its longest row, so short histories do not pay for long ones."""
        lengths = (self.columns["ids"] > 0).sum(1)
        order = np.lexsort((rng.random(len(lengths)), lengths))
        batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def batch(self, rows, device):
        """{name: (B, width) tensor or None}, trimmed to the batch's longest row (at least 2)."""
        width = max(2, int((self.columns["ids"][rows] > 0).sum(1).max()))
        pick = lambda a: None if a is None else torch.as_tensor(np.ascontiguousarray(a[rows][:, -width:]), device=device)
        return {name: pick(a) for name, a in self.columns.items()}
