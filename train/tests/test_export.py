import json
import os
import struct
import unittest

import numpy as np
import torch

from cangen_train.config import make_config
from cangen_train.data import load_interactions
from cangen_train.errors import ModelFormatError
from cangen_train.export import export_model, load_model
from cangen_train.features import attach_item_features
from cangen_train.models.user_model import UserModel
from cangen_train.safetensors import read_safetensors, write_safetensors
from tests.helpers import TempFiles

LOG = "user,item,timestamp,action\n" + "".join(f"u{u},i{(u * 7 + k) % 13},{k * 60 + u},{'view' if k % 3 else 'buy'}\n" for u in range(6) for k in range(9))


def read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def read_text(*parts, mode="r"):
    with open(os.path.join(*parts), mode) as f:
        return f.read()


def random_model(cfg, inter):
    torch.manual_seed(0)
    model = UserModel(cfg, inter.num_items, len(inter.action_names), inter.item_features, len(inter.feature_names)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # move every weight off its initial value
    return model


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.files = TempFiles()
        self.inter = load_interactions(self.files.write("log.csv", LOG))
        attach_item_features(self.inter, self.files.write("f.json", json.dumps({f"i{k}": [k % 3, "x"] for k in range(13)})))

    def tearDown(self):
        self.files.close()

    def round_trip(self, **overrides):
        cfg = make_config(dim=16, layers=2, heads=2, maxLen=8, **overrides)
        model = random_model(cfg, self.inter)
        out = self.files.path(f"model-{cfg['model']}-{cfg['head']}")
        export_model(model, out, self.inter)
        loaded = load_model(out)
        ids = torch.tensor([[0, 0, 3, 5, 1, 2, 9, 4], [1, 2, 3, 4, 5, 6, 7, 8]])
        times = torch.arange(16).view(2, 8) * 1000
        actions = torch.tensor([[0, 0, 1, 2, 1, 1, 2, 1], [1] * 8])
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids, times, actions), model(ids, times, actions), rtol=0, atol=0)
            table = model.items.table()
            q = model(ids, times, actions)[:, -1]
            torch.testing.assert_close(loaded.head.cross(q, table), model.head.cross(q, table), rtol=0, atol=0)
        return out, model

    def test_hstu_mol_long_term_multi_interest_round_trip(self):
        out, model = self.round_trip(model="hstu", head="mol", longTerm=True, interests=3, shortWindow=4)
        config = read_json(out, "config.json")
        self.assertEqual((config["format"], config["version"]), ("cangen-user-model", 1))
        self.assertEqual(read_text(out, "items.txt").split(), self.inter.item_ids)
        self.assertEqual(read_text(out, "actions.txt").split(), ["buy", "view"])
        tensors = read_safetensors(os.path.join(out, "model.safetensors"))
        documented = ("items.", "actions.", "encoder.", "long.", "fuse.", "interests.", "mol.", "item_embeddings")
        self.assertEqual([k for k in tensors if not k.startswith(documented)], [])  # docs/TRAINING.md lists these
        self.assertEqual(tuple(tensors["item_embeddings"].shape), (14, 16))
        self.assertEqual(tensors["items.feature_ids"].dtype, torch.int64)
        self.assertEqual(tuple(tensors["encoder.layers.0.uvqk.weight"].shape), (2 * (2 * 8 + 2 * 8), 16))
        scorer = read_json(out, "scorer", "config.json")
        self.assertEqual(scorer["kind"], "mol")
        head = read_safetensors(os.path.join(out, "scorer", "model.safetensors"))
        self.assertEqual(sorted(head), sorted(k for k in model.state_dict() if k.startswith("mol.")))

    def test_sasrec_dot_round_trip_exports_normalised_items(self):
        out, model = self.round_trip(model="sasrec", head="dot")
        tensors = read_safetensors(os.path.join(out, "model.safetensors"))
        torch.testing.assert_close(tensors["item_embeddings"].norm(dim=1)[1:], torch.ones(13))
        self.assertEqual(read_json(out, "scorer", "config.json")["kind"], "dot")

    def test_corrupt_and_mismatched_files_are_rejected(self):
        out, _ = self.round_trip(model="hstu", head="dot")
        path = os.path.join(out, "model.safetensors")
        raw = read_text(path, mode="rb")
        with open(path, "wb") as f:
            f.write(raw[:len(raw) // 2])
        with self.assertRaises(ModelFormatError):
            load_model(out)
        tensors = {"encoder.final_norm.weight": torch.ones(3)}
        write_safetensors(path, tensors)
        with self.assertRaises(ModelFormatError) as ctx:
            load_model(out)
        self.assertIn("missing tensors", ctx.exception.message)

    def test_safetensors_layout(self):
        path = self.files.path("t.safetensors")
        write_safetensors(path, {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.tensor([7, -1])})
        raw = read_text(path, mode="rb")
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual((8 + n) % 8, 0)
        header = json.loads(raw[8:8 + n])
        self.assertEqual(header["a"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})
        self.assertEqual(header["b"], {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]})
        self.assertEqual(np.frombuffer(raw[8 + n:8 + n + 24], "<f4").tolist(), [0, 1, 2, 3, 4, 5])
        back = read_safetensors(path)
        self.assertEqual(back["b"].tolist(), [7, -1])


def write_scorer_fixture(out_dir):
    """For test/train.test.ts: a MoL model exported, plus the scores PyTorch gives, so the Node
    side can check that cangen's LearnedScorer loads the head and scores identically."""
    files_inter = load_interactions(os.path.join(out_dir, "log.csv"))
    cfg = make_config(dim=16, layers=1, heads=1, maxLen=8, head="mol")
    model = random_model(cfg, files_inter)
    export_model(model, os.path.join(out_dir, "model"), files_inter)
    with torch.no_grad():
        users = torch.randn(3, 16)
        table = read_safetensors(os.path.join(out_dir, "model", "model.safetensors"))["item_embeddings"][1:]
        scores = model.head.cross(users[:, None, :], table)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"users": users.flatten().tolist(), "items": table.flatten().tolist(), "scores": scores.flatten().tolist(),
                   "numItems": int(table.shape[0]), "dim": 16}, f)


if __name__ == "__main__":
    unittest.main()
