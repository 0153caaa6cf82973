"""A planted sequential pattern: item i is always followed by next[i] (a fixed random permutation).
A sequence model that reads the last event must learn it; a bag-of-items model could not."""
import io
import os
import time
import unittest

import numpy as np
import torch

from cangen_train.config import make_config
from cangen_train.errors import ConfigError
from cangen_train.trainer import train
from tests.helpers import TempFiles

NUM_ITEMS, USERS, LENGTH = 60, 300, 10


def planted_file(files, seed=0):
    rng = np.random.default_rng(seed)
    nxt = rng.permutation(NUM_ITEMS)
    lines = []
    for u in range(USERS):
        item, seq = int(rng.integers(NUM_ITEMS)), []
        for _ in range(LENGTH):
            seq.append(item)
            item = int(nxt[item])
        lines.append(f"u{u} " + " ".join(f"i{x}" for x in seq))
    return files.write("planted.txt", "\n".join(lines) + "\n")


class PlantedPatternTest(unittest.TestCase):
    def setUp(self):
        self.files = TempFiles()
        self.data = planted_file(self.files)

    def tearDown(self):
        self.files.close()

    def learn(self, **overrides):
        cfg = make_config(dim=32, layers=1, maxLen=8, epochs=8, patience=2, protocol="raw", batchSize=64, lr=5e-3, warmupSteps=5,
                          dropout=0.0, negatives=32, inBatchNegatives=32, temperature=0.1, seed=1, threads=1, **overrides)
        start = time.time()
        results = train(cfg, self.data, self.files.path(f"out-{cfg['model']}-{cfg['head']}"), log=io.StringIO())
        return results, time.time() - start

    def test_sasrec_learns_the_pattern(self):
        results, seconds = self.learn(model="sasrec")
        self.assertGreaterEqual(results["test"]["raw"]["hr@10"], 0.9, results["test"]["raw"])
        self.assertLess(seconds, 30)

    def test_hstu_learns_the_pattern(self):
        results, seconds = self.learn(model="hstu")
        self.assertGreaterEqual(results["test"]["raw"]["hr@10"], 0.9, results["test"]["raw"])
        self.assertLess(seconds, 30)

    def test_hstu_long_term_mol_learns_the_pattern(self):
        results, _ = self.learn(model="hstu", head="mol", longTerm=True, interests=2,
                                mol={"queryComponents": 2, "itemComponents": 2, "componentDim": 16, "gatingWidth": 16, "temperature": 0.1})
        self.assertGreaterEqual(results["test"]["raw"]["hr@10"], 0.9, results["test"]["raw"])


class ResumeTest(unittest.TestCase):
    def test_resume_continues_from_the_last_epoch(self):
        files = TempFiles()
        try:
            data, out = planted_file(files), files.path("out")
            base = dict(model="sasrec", dim=16, layers=1, maxLen=6, batchSize=64, dropout=0.0, seed=3, threads=1, protocol="raw")
            first = train(make_config(epochs=1, **base), data, out, log=io.StringIO())
            self.assertEqual(len(first["history"]), 1)
            second = train(make_config(epochs=3, **base), data, out, resume=True, log=io.StringIO())
            self.assertEqual([h["epoch"] for h in second["history"]], [1, 2, 3])
            self.assertEqual(second["history"][0], first["history"][0])  # the first epoch was not redone
            with self.assertRaises(ConfigError):  # a different architecture cannot resume this checkpoint
                train(make_config(epochs=4, **{**base, "dim": 32}), data, out, resume=True, log=io.StringIO())
        finally:
            files.close()


if __name__ == "__main__":
    unittest.main()
