"""Item side information (categories, brands, genres) attached to `Interactions` as feature ids.

Accepted files: a JSON object `{item_id: [feature, ...]}` (S3Rec's `*_item2attributes.json`),
MovieLens `movies.dat` (`id::title::Genre|Genre`) and `movies.csv` (`movieId,title,genres`), or a
TSV/CSV whose first column is the item id and last column `|`-separated features (a header line is
skipped when its first field is not a known item). Items absent from the file get no features.
"""
import csv
import json
import os

import numpy as np

from .errors import DataFormatError


def _read_pairs(path):
    name = os.path.basename(path).lower()
    if name.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        if not isinstance(table, dict):
            raise DataFormatError(f"{path}: expected a JSON object {{item_id: [feature, ...]}}")
        return [(str(k), [str(v) for v in (vs if isinstance(vs, list) else [vs])]) for k, vs in table.items()]
    if name.endswith(".dat"):
        pairs = []
        with open(path, encoding="latin-1") as f:
            for number, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("::")
                if len(parts) < 3:
                    raise DataFormatError(f"{path}:{number}: expected 'id::title::Genre|Genre'")
                pairs.append((parts[0], [g for g in parts[-1].split("|") if g]))
        return pairs
    delimiter = "\t" if name.endswith(".tsv") or name.endswith(".txt") else ","
    pairs = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter=delimiter):
            if len(row) >= 2:
                pairs.append((row[0], [v for v in row[-1].split("|") if v and v != "(no genres listed)"]))
    return pairs


def attach_item_features(interactions, path, max_per_item=16):
    """Sets interactions.item_features ((N+1) x F int64, 0 = none) and feature_names from `path`."""
    if not os.path.isfile(path):
        raise DataFormatError(f"{path}: no such file; --item-features takes a features file")
    pairs = _read_pairs(path)
    row_of = {item: i + 1 for i, item in enumerate(interactions.item_ids)}
    names, index = {}, {}
    rows = []
    matched = 0
    for item, features in pairs:
        row = row_of.get(item)
        if row is None:
            continue
        matched += 1
        ids = []
        for feature in features:
            if feature not in index:
                index[feature] = len(index) + 1
                names[index[feature]] = feature
            if index[feature] not in ids:
                ids.append(index[feature])
        rows.append((row, ids[:max_per_item]))
    if matched == 0:
        raise DataFormatError(f"{path}: none of its item ids match the interaction file's items "
                              f"(e.g. '{pairs[0][0] if pairs else ''}' vs '{interactions.item_ids[0]}')")
    width = max(1, max(len(ids) for _, ids in rows))
    table = np.zeros((interactions.num_items + 1, width), np.int64)
    for row, ids in rows:
        table[row, :len(ids)] = ids
    interactions.item_features = table
    interactions.feature_names = [names[i] for i in range(1, len(names) + 1)]
    return interactions
