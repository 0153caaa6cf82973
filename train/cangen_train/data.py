"""Interaction logs in the formats of the field, read into one compact structure.

Every reader returns `Interactions`: users' events as CSR arrays (item indices 1..N, 0 is the
padding index), sorted by time within each user, with the original user and item ids kept so an
exported model can map them back. Nothing here loops over events in Python except the parsing of
the text itself.
"""
import csv
import os
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .errors import DataFormatError

FORMATS = ("auto", "sequences", "movielens-dat", "u-data", "ratings-csv", "events-csv")


@dataclass
class Interactions:
    """Users' time-ordered events. User u's events are items[offsets[u]:offsets[u+1]]."""

    user_ids: List[str]
    item_ids: List[str]  # original id of item index i is item_ids[i - 1]
    offsets: np.ndarray  # int64, len(users) + 1
    items: np.ndarray  # int64, 1..N
    times: Optional[np.ndarray] = None  # int64 seconds, or None when the format has no time
    actions: Optional[np.ndarray] = None  # int64 1..A, or None
    action_names: List[str] = field(default_factory=list)  # action index a is action_names[a - 1]
    source: str = ""
    format: str = ""
    item_features: Optional[np.ndarray] = None  # int64 (N + 1) x F, feature indices 1..V, 0 = none
    feature_names: List[str] = field(default_factory=list)
    scenarios: Optional[np.ndarray] = None  # int64 1..S per event (the surface it happened on), or None
    scenario_names: List[str] = field(default_factory=list)
    held_out: Optional[np.ndarray] = None  # bool per event: the log's own test events (a `split` column), or None

    @property
    def num_users(self):
        return len(self.user_ids)

    @property
    def num_items(self):
        return len(self.item_ids)

    @property
    def lengths(self):
        return np.diff(self.offsets)

    def stats(self):
        lengths = self.lengths
        return {
            "users": self.num_users, "items": self.num_items, "events": int(len(self.items)),
            "meanLength": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "maxLength": int(lengths.max()) if len(lengths) else 0,
            "hasTimes": self.times is not None, "actions": list(self.action_names),
            "scenarios": list(self.scenario_names), "itemFeatures": len(self.feature_names),
            "heldOutEvents": int(self.held_out.sum()) if self.held_out is not None else 0,
        }


def _indexer():
    """Maps original ids to dense indices 1.. in order of first appearance."""
    table = {}

    def index(key):
        found = table.get(key)
        if found is None:
            found = table[key] = len(table) + 1
        return found

    return table, index


def _ordered_keys(table):
    keys = [None] * len(table)
    for key, i in table.items():
        keys[i - 1] = key
    return keys


def read_sequences(path):
    """One user a line, `user item item ...`, items already in time order (S3Rec/SASRec files)."""
    users, offsets, items = [], [0], []
    item_table, item_index = _indexer()
    seen_users = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataFormatError(f"{path}:{number}: user '{parts[0]}' has no items; expected 'user item item ...' on each line")
            if parts[0] in seen_users:
                raise DataFormatError(f"{path}:{number}: user '{parts[0]}' appears on two lines; a sequence file has one line per user")
            seen_users.add(parts[0])
            users.append(parts[0])
            items.extend(item_index(p) for p in parts[1:])
            offsets.append(len(items))
    if not users:
        raise DataFormatError(f"{path}: no events (empty file); expected one user a line, 'user item item ...'")
    return Interactions(users, _ordered_keys(item_table), np.asarray(offsets, np.int64), np.asarray(items, np.int64),
                        source=path, format="sequences")


def _from_events(path, fmt, users, items, times, actions=None, scenarios=None, splits=None):
    """Groups parallel event columns by user and sorts each user's events by time (stable; file
    order when there are no times)."""
    if not users:
        raise DataFormatError(f"{path}: no events (empty file)")
    user_table, user_index = _indexer()
    item_table, item_index = _indexer()
    u = np.fromiter((user_index(x) for x in users), np.int64, len(users))
    i = np.fromiter((item_index(x) for x in items), np.int64, len(items))
    t = np.asarray(times, np.int64) if times is not None else None
    order = np.argsort(t, kind="stable") if t is not None else np.arange(len(u))
    order = order[np.argsort(u[order], kind="stable")]
    counts = np.bincount(u - 1, minlength=len(user_table))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def vocabulary(values):
        if values is None:
            return None, []
        table, index = _indexer()
        return np.fromiter((index(x) for x in values), np.int64, len(values))[order], _ordered_keys(table)

    a, action_names = vocabulary(actions)
    sc, scenario_names = vocabulary(scenarios)
    held_out = None
    if splits is not None:
        unknown = sorted(set(splits) - {"train", "test"})
        if unknown:
            raise DataFormatError(f"{path}: split column holds {unknown[:3]}; expected 'train' or 'test'")
        held_out = np.fromiter((x == "test" for x in splits), bool, len(splits))[order]
    return Interactions(_ordered_keys(user_table), _ordered_keys(item_table), offsets, i[order],
                        None if t is None else t[order], a, action_names, source=path, format=fmt,
                        scenarios=sc, scenario_names=scenario_names, held_out=held_out)


def _parse_time(value, path, number):
    try:
        return int(float(value))
    except ValueError:
        raise DataFormatError(f"{path}:{number}: timestamp '{value}' is not a number (Unix seconds expected)") from None


def _read_rating_lines(path, fmt, split, layout):
    """MovieLens rating files: four fields a line (user, item, rating, timestamp); every rating is an event."""
    users, items, times = [], [], []
    with open(path, encoding="latin-1") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = split(line.strip())
            if len(parts) != 4:
                raise DataFormatError(f"{path}:{number}: expected 4 fields '{layout}', found {len(parts)}")
            users.append(parts[0]); items.append(parts[1]); times.append(_parse_time(parts[3], path, number))
    return _from_events(path, fmt, users, items, times)


def read_movielens_dat(path):
    """MovieLens-1M/10M `ratings.dat`: `user::movie::rating::timestamp`."""
    return _read_rating_lines(path, "movielens-dat", lambda line: line.split("::"), "user::movie::rating::timestamp")


def read_u_data(path):
    """MovieLens-100K `u.data`: tab-separated `user item rating timestamp`."""
    return _read_rating_lines(path, "u-data", str.split, "user item rating timestamp")


COLUMN_ALIASES = {
    "user": ("user", "user_id", "userid", "uid"),
    "item": ("item", "item_id", "itemid", "movieid", "movie_id", "iid"),
    "timestamp": ("timestamp", "time", "ts", "datetime"),
    "action": ("action", "behavior", "behaviour", "event", "event_type", "type", "label"),
    "scenario": ("scenario", "surface", "domain"),
    "split": ("split",),
}


def _column_roles(header, path):
    roles = {}
    lowered = [h.strip().lower() for h in header]
    for role, aliases in COLUMN_ALIASES.items():
        for j, name in enumerate(lowered):
            if name in aliases:
                roles[role] = j
                break
    known = {alias for aliases in COLUMN_ALIASES.values() for alias in aliases} | {"-", "rating"}  # ratings are not events' labels
    unknown = [h for h, name in zip(header, lowered) if name not in known]
    if unknown:
        raise DataFormatError(f"{path}: header column(s) {unknown} are not user, item, timestamp, action, scenario or split; "
                              f"rename them or skip them with --columns (e.g. user,item,-,timestamp)")
    missing = [r for r in ("user", "item") if r not in roles]
    if missing:
        raise DataFormatError(f"{path}: header {header} has no column for {', '.join(missing)}; "
                              f"name them user, item[, timestamp][, action][, scenario][, split] or pass --columns")
    return roles


def read_events_csv(path, columns=None, fmt="events-csv"):
    """A CSV or TSV of (user, item[, timestamp][, action][, scenario][, split]) rows, with or
    without a header.

    `columns` names each column in order (`user,item,-,action,timestamp`; `-` skips one); without
    it a header names them, or, with no header, the order is user, item, timestamp[, action].
    Without a timestamp column each user's events keep the file's order. `action` is the event's
    type (its label in multi-task training), `scenario` the surface it happened on, `split`
    `train` or `test` (the log's own held-out events, as in published multi-behaviour splits).
    """
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline()
        if not first.strip():
            raise DataFormatError(f"{path}: no events (empty file); expected rows of user, item, timestamp[, action]")
        delimiter = "\t" if "\t" in first else ","
        f.seek(0)
        rows = csv.reader(f, delimiter=delimiter)
        header = next(rows)
        width = len(header)
        if columns:
            names = [c.strip() for c in columns.split(",")]
            if len(names) != width:
                raise DataFormatError(f"{path}: --columns names {len(names)} columns but the file has {width}")
            roles = _column_roles(names, path)
            data_rows = [header]
        else:
            has_header = any(h.strip().lower() in sum(COLUMN_ALIASES.values(), ()) for h in header)
            if has_header:
                roles = _column_roles(header, path)
                data_rows = []
            else:
                if width not in (3, 4):
                    raise DataFormatError(f"{path}: {width} columns and no header; expected user, item, timestamp[, action] "
                                          f"or a header, or --columns")
                roles = {"user": 0, "item": 1, "timestamp": 2}
                if width == 4:
                    roles["action"] = 3
                data_rows = [header]
        optional = lambda role: [] if role in roles else None
        users, items, times, actions, scenarios, splits = [], [], optional("timestamp"), optional("action"), optional("scenario"), optional("split")
        ju, ji = roles["user"], roles["item"]
        extra = [(roles[r], column) for r, column in (("action", actions), ("scenario", scenarios), ("split", splits)) if column is not None]
        jt = roles.get("timestamp")

        def take(row, number):
            if len(row) != width:
                raise DataFormatError(f"{path}:{number}: {len(row)} fields where the first line has {width} (ragged row)")
            users.append(row[ju]); items.append(row[ji])
            if jt is not None:
                times.append(_parse_time(row[jt], path, number))
            for j, column in extra:
                column.append(row[j].strip())

        for row in data_rows:
            take(row, 1)
        for number, row in enumerate(rows, 2):
            if row:
                take(row, number)
    return _from_events(path, fmt, users, items, times, actions, scenarios, splits)


def detect_format(path):
    name = os.path.basename(path).lower()
    if name.endswith(".dat"):
        return "movielens-dat"
    if name == "u.data":
        return "u-data"
    if name.endswith(".csv") or name.endswith(".tsv"):
        with open(path, encoding="utf-8") as f:
            first = f.readline().lower()
        return "ratings-csv" if first.startswith("userid,movieid") else "events-csv"
    return "sequences"


def load_interactions(path, fmt="auto", columns=None):
    """Reads `path` in `fmt` (one of FORMATS; `auto` guesses from the name and first line)."""
    if fmt not in FORMATS:
        raise DataFormatError(f"Expected a format among {', '.join(FORMATS)} but received '{fmt}'")
    if not os.path.isfile(path):
        raise DataFormatError(f"{path}: no such file; --data takes a path to an interaction file")
    if os.path.getsize(path) == 0:
        raise DataFormatError(f"{path}: no events (empty file)")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "sequences":
        return read_sequences(path)
    if fmt == "movielens-dat":
        return read_movielens_dat(path)
    if fmt == "u-data":
        return read_u_data(path)
    return read_events_csv(path, columns, fmt)  # ratings-csv is the header form of events-csv
