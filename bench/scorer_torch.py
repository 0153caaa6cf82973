#!/usr/bin/python3
"""PyTorch (eager, CPU) peer of bench/scorer.ts: the same model directory and data, scored the
way a PyTorch user would write the module, top-k by torch.topk over chunks of ads.

  /usr/bin/python3 bench/scorer_torch.py '{"model": dir, "ads": file, "users": file, "n": N,
      "itemDim": D, "userDim": U, "batches": [1, 16], "k": 100, "threads": T, "reps": R,
      "chunk": 65536}'

Prints one JSON object: torch version, threads, and per batch the times (ms) and user 0's top-k.
What depends on the ad alone (MoL item components and the gating item half) is precomputed
before timing, as cangen does at add().
"""
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e["dtype"]
        b, end = e["data_offsets"]
        data = np.frombuffer(raw, dtype="<f4", count=(end - b) // 4, offset=8 + length + b)
        out[name] = torch.from_numpy(data.copy()).reshape(e["shape"])
    return out


class Mlp(torch.nn.Module):
    def __init__(self, config, t):
        super().__init__()
        self.features = config["mlp"].get("features", ["user", "item", "cross"])
        self.act = F.silu if config.get("activation") == "silu" else F.relu
        self.layers = [(t[f"mlp.layers.{l}.weight"], t[f"mlp.layers.{l}.bias"]) for l in range(len(config["mlp"]["hidden"]))]
        self.out = (t["mlp.out.weight"], t["mlp.out.bias"])

    def forward(self, u, x, w):  # u: userDim, x: n x itemDim -> n blended scores
        parts = []
        if "user" in self.features:
            parts.append(u.expand(x.shape[0], -1))
        if "item" in self.features:
            parts.append(x)
        if "cross" in self.features:
            parts.append(u * x)
        z = torch.cat(parts, dim=1)
        for weight, bias in self.layers:
            z = self.act(F.linear(z, weight, bias))
        return F.linear(z, self.out[0], self.out[1]) @ w


class Mol(torch.nn.Module):
    def __init__(self, config, t):
        super().__init__()
        m = config["mol"]
        self.pq, self.px, self.dc = m["queryComponents"], m["itemComponents"], m["componentDim"]
        self.temperature = m.get("temperature", 1.0)
        self.heads = len(config["heads"])
        self.act = F.silu if config.get("activation") == "silu" else F.relu
        self.t = t

    def precompute(self, x):
        t = self.t
        k = F.normalize(F.linear(x, t["mol.item_proj.weight"], t["mol.item_proj.bias"]).view(-1, self.px, self.dc), dim=-1)
        return k, F.linear(x, t["mol.gate.item.weight"])

    def forward(self, u, items, w):
        t = self.t
        keys, gate_item = items
        q = F.normalize(F.linear(u, t["mol.query_proj.weight"], t["mol.query_proj.bias"]).view(self.pq, self.dc), dim=-1)
        logits = torch.einsum("pc,njc->npj", q, keys).reshape(keys.shape[0], -1) / self.temperature
        gate_user = F.linear(u, t["mol.gate.user.weight"], t["mol.gate.user.bias"])
        hidden = self.act(gate_user + gate_item + F.linear(logits, t["mol.gate.logits.weight"]))
        gates = F.linear(hidden, t["mol.gate.out.weight"], t["mol.gate.out.bias"]).view(-1, self.heads, logits.shape[1])
        heads = (torch.softmax(gates, dim=-1) * logits.unsqueeze(1)).sum(-1)
        return heads @ w


def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    config = json.load(open(f"{a['model']}/config.json"))
    t = read_safetensors(f"{a['model']}/model.safetensors")
    ads = torch.from_numpy(np.fromfile(a["ads"], dtype="<f4").reshape(a["n"], a["itemDim"]))
    users = torch.from_numpy(np.fromfile(a["users"], dtype="<f4").reshape(-1, a["userDim"]))
    model = Mlp(config, t) if config["kind"] == "mlp" else Mol(config, t)
    w = torch.zeros(len(config["heads"]))
    w[0] = 1.0
    chunk = a.get("chunk", 65536)
    with torch.no_grad():
        starts = range(0, a["n"], chunk)
        items = [model.precompute(ads[s : s + chunk]) for s in starts] if config["kind"] == "mol" else [ads[s : s + chunk] for s in starts]

        def search(batch):
            tops = []
            for u in users[:batch]:
                best_s = torch.empty(0)
                best_i = torch.empty(0, dtype=torch.long)
                for s, item in zip(starts, items):
                    scores = model(u, item, w)
                    v, i = torch.topk(scores, min(a["k"], scores.shape[0]))
                    best_s, order = torch.topk(torch.cat([best_s, v]), min(a["k"], best_s.shape[0] + v.shape[0]))
                    best_i = torch.cat([best_i, i + s])[order]
                tops.append((best_i, best_s))
            return tops

        result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batches": []}
        for batch in a["batches"]:
            search(1)  # warm-up
            times = []
            for _ in range(a["reps"] if batch == 1 else max(1, a["reps"] // 2)):
                started = time.perf_counter()
                tops = search(batch)
                times.append((time.perf_counter() - started) * 1000)
            result["batches"].append({"batch": batch, "ms": times, "top_ids": tops[0][0].tolist(), "top_scores": tops[0][1].tolist()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
