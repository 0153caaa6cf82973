import math
import unittest

import numpy as np
import torch

from cangen_train.data import load_interactions
from cangen_train.errors import DataFormatError
from cangen_train.metrics import mask_scores, summarize, target_ranks
from cangen_train.split import leave_one_out, windows
from tests.helpers import TempFiles


class SplitTest(unittest.TestCase):
    def setUp(self):
        self.files = TempFiles()
        # items re-indexed in first-appearance order: a=1 b=2 c=3 d=4 e=5
        self.inter = load_interactions(self.files.write("s.txt", "u1 a b c d e\nu2 b c\nu3 a c d\n"))

    def tearDown(self):
        self.files.close()

    def test_leave_one_out_by_hand(self):
        split = leave_one_out(self.inter)
        # u1 (5 events): train a b c (pairs a->b, b->c), validation input a b c -> d, test a b c d -> e
        self.assertEqual(split.train_users.tolist(), [0])
        self.assertEqual(split.train_ends.tolist(), [3])
        # validation needs 3 events: u1 (target d) and u3 (input a, target c); u2 (2 events) has none
        self.assertEqual(split.validation.users.tolist(), [0, 2])
        self.assertEqual(split.validation.targets.tolist(), [4, 3])
        self.assertEqual((split.validation.ends - split.validation.starts).tolist(), [3, 1])
        # test: every user; u2's input is its single first event b, target c
        self.assertEqual(split.test.users.tolist(), [0, 1, 2])
        self.assertEqual(split.test.targets.tolist(), [5, 3, 4])
        self.assertEqual((split.test.ends - split.test.starts).tolist(), [4, 1, 2])

    def test_one_event_user_is_an_error_unless_dropped(self):
        inter = load_interactions(self.files.write("one.txt", "u1 a b c\nlonely x\n"))
        with self.assertRaises(DataFormatError) as ctx:
            leave_one_out(inter)
        self.assertIn("user 'lonely' has 1 event(s)", ctx.exception.message)
        self.assertIn("--drop-short", ctx.exception.message)
        self.assertEqual(leave_one_out(inter, drop_short=True).test.users.tolist(), [0])

    def test_windows_right_aligned(self):
        split = leave_one_out(self.inter)
        ids, valid = windows(self.inter.items, split.test.starts, split.test.ends, 3)
        self.assertEqual(ids.tolist(), [[2, 3, 4], [0, 0, 2], [0, 1, 3]])
        self.assertEqual(valid.tolist(), [[True] * 3, [False, False, True], [False, True, True]])


class MetricsTest(unittest.TestCase):
    def test_ranks_count_ties_against_the_target(self):
        scores = torch.tensor([[0.0, 0.9, 0.5, 0.5, 0.1], [0.0, 0.2, 0.3, 0.4, 0.5]])
        ranks = target_ranks(scores, torch.tensor([2, 4]))
        self.assertEqual(ranks.tolist(), [3, 1])  # 0.5 ties with item 3: rank 3, not 2

    def test_summary_by_hand(self):
        m = summarize(torch.tensor([1, 3, 11, 60]), cutoffs=(10, 50))
        self.assertAlmostEqual(m["hr@10"], 0.5)
        self.assertAlmostEqual(m["ndcg@10"], (1.0 + 1.0 / math.log2(4)) / 4)
        self.assertAlmostEqual(m["hr@50"], 0.75)
        self.assertAlmostEqual(m["ndcg@50"], (1.0 + 0.5 + 1.0 / math.log2(12)) / 4)
        self.assertAlmostEqual(m["mrr"], (1 + 1 / 3 + 1 / 11 + 1 / 60) / 4)

    def test_s3rec_masks_history_to_zero_and_keeps_padding(self):
        # items 1..4; history {1, 3}; target 2 with a negative score
        scores = torch.tensor([[7.0, 0.75, -0.25, 0.5, -0.5]])
        full = torch.tensor([[0, 1, 3]])
        masked = mask_scores(scores.clone(), "s3rec", full, full)
        self.assertEqual(masked.tolist(), [[0.0, 0.0, -0.25, 0.0, -0.5]])
        # padding and both history items score 0 > -0.2: the target ranks 4th
        self.assertEqual(target_ranks(masked, torch.tensor([2])).tolist(), [4])

    def test_gr_removes_window_items_only(self):
        scores = torch.tensor([[7.0, 0.75, -0.25, 0.5, -0.5]])
        full = torch.tensor([[1, 3]])
        window = torch.tensor([[0, 3]])  # item 1 fell out of the input window
        masked = mask_scores(scores.clone(), "gr", full, window)
        self.assertEqual(target_ranks(masked, torch.tensor([2])).tolist(), [2])  # only item 1 (0.8) is above
        raw = mask_scores(scores.clone(), "raw", full, window)
        self.assertEqual(target_ranks(raw, torch.tensor([2])).tolist(), [3])

    def test_a_masked_target_is_a_miss_under_gr(self):
        scores = torch.tensor([[0.0, 0.9, 0.1]])
        masked = mask_scores(scores.clone(), "gr", torch.tensor([[1]]), torch.tensor([[1]]))
        self.assertGreater(target_ranks(masked, torch.tensor([1])).item(), 2)


if __name__ == "__main__":
    unittest.main()
