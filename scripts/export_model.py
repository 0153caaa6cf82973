#!/usr/bin/python3
"""Export a PyTorch scorer as a cangen model directory (config.json + model.safetensors).

The modules below name their parameters exactly as cangen expects (docs/SCORERS.md), so
`model.state_dict()` is the tensor list. Train them (or copy your trained weights into them),
then call export(). Needs only torch and numpy (no safetensors package: the format is written
by hand).

  /usr/bin/python3 scripts/export_model.py --kind mlp --out models/demo-mlp   # random weights, for trying cangen
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from cangen_train.safetensors import write_safetensors  # noqa: E402  (one writer for every export)


class MlpLayer(nn.Linear):
    """A hidden layer: Linear, optional LayerNorm, activation. Keys: weight, bias, norm.weight, norm.bias."""

    def __init__(self, inp, out, layer_norm):
        super().__init__(inp, out)
        self.norm = nn.LayerNorm(out) if layer_norm else None

    def forward(self, z, act):
        z = super().forward(z)
        return act(self.norm(z) if self.norm is not None else z)


class Mlp(nn.Module):
    def __init__(self, user_dim, item_dim, hidden, heads, features=("user", "item", "cross"), layer_norm=False):
        super().__init__()
        self.features = list(features)
        widths = [(user_dim if "user" in features else 0) + (item_dim if "item" in features else 0) + (item_dim if "cross" in features else 0)]
        widths += list(hidden)
        self.layers = nn.ModuleList(MlpLayer(a, b, layer_norm) for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(widths[-1], heads)

    def forward(self, u, x, act=F.relu):  # u, x: n x dim -> n x heads
        parts = {"user": u, "item": x, "cross": u * x}
        z = torch.cat([parts[f] for f in self.features], dim=-1)
        for layer in self.layers:
            z = layer(z, act)
        return self.out(z)


class Mol(nn.Module):
    def __init__(self, user_dim, item_dim, pq, px, dc, gating, heads, temperature):
        super().__init__()
        self.pq, self.px, self.dc, self.heads, self.temperature = pq, px, dc, heads, temperature
        self.query_proj = nn.Linear(user_dim, pq * dc)
        self.item_proj = nn.Linear(item_dim, px * dc)
        self.gate = nn.ModuleDict({
            "user": nn.Linear(user_dim, gating),
            "item": nn.Linear(item_dim, gating, bias=False),
            "logits": nn.Linear(pq * px, gating, bias=False),
            "out": nn.Linear(gating, heads * pq * px),
        })

    def forward(self, u, x, act=F.relu):  # u, x: n x dim -> n x heads
        q = F.normalize(self.query_proj(u).view(-1, self.pq, self.dc), dim=-1)
        k = F.normalize(self.item_proj(x).view(-1, self.px, self.dc), dim=-1)
        logits = torch.einsum("nic,njc->nij", q, k).flatten(1) / self.temperature  # index i * px + j
        g = act(self.gate["user"](u) + self.gate["item"](x) + self.gate["logits"](logits))
        gates = torch.softmax(self.gate["out"](g).view(-1, self.heads, logits.shape[1]), dim=-1)
        return (gates * logits.unsqueeze(1)).sum(-1)


class Dot(nn.Module):
    def __init__(self, user_dim, item_dim, heads):
        super().__init__()
        self.proj = nn.Parameter(torch.randn(heads, item_dim, user_dim) / user_dim ** 0.5)

    def forward(self, u, x, act=None):
        return torch.einsum("hji,ni,nj->nh", self.proj, u, x)


class Scorer(nn.Module):
    """Wraps one kind under its prefix ('mlp.', 'mol.' or 'dot.'), as cangen names the tensors."""

    def __init__(self, kind, **kwargs):
        super().__init__()
        setattr(self, kind, {"mlp": Mlp, "mol": Mol, "dot": Dot}[kind](**kwargs))
        self.kind = kind

    def forward(self, u, x, act=F.relu):
        return getattr(self, self.kind)(u, x, act)


def export(model, config, out_dir):
    """Writes config.json and model.safetensors (the state_dict: names as cangen expects them)."""
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), model.state_dict())
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["mlp", "mol", "dot"], default="mlp")
    p.add_argument("--out", required=True)
    p.add_argument("--dim", type=int, default=64)
    a = p.parse_args()
    torch.manual_seed(0)
    heads = ["engagement", "click", "conversion"]
    config = {
        "format": "cangen-scorer", "version": 1, "kind": a.kind, "userDim": a.dim, "itemDim": a.dim, "heads": heads,
        "scenarios": {"home": {"engagement": 1, "click": 0.5}, "search": {"click": 1, "conversion": 1}, "related": {"engagement": 0.5, "click": 1}},
        "defaultScenario": "home", "activation": "relu",
    }
    if a.kind == "mlp":
        config["mlp"] = {"hidden": [256, 128], "features": ["user", "item", "cross"], "layerNorm": False}
        model = Scorer("mlp", user_dim=a.dim, item_dim=a.dim, hidden=[256, 128], heads=3)
    elif a.kind == "mol":
        config["mol"] = {"queryComponents": 8, "itemComponents": 4, "componentDim": 64, "gatingWidth": 128, "temperature": 0.05}
        model = Scorer("mol", user_dim=a.dim, item_dim=a.dim, pq=8, px=4, dc=64, gating=128, heads=3, temperature=0.05)
    else:
        config["dot"] = {"projection": True}
        model = Scorer("dot", user_dim=a.dim, item_dim=a.dim, heads=3)
    export(model, config, a.out)
    print(f"wrote {a.out}/config.json and {a.out}/model.safetensors ({sum(t.numel() for t in model.state_dict().values())} weights)")


if __name__ == "__main__":
    main()
