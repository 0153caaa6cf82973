"""The user model: item tower -> short-term encoder (HSTU or SASRec) -> optional long-term fusion
-> K query embeddings -> similarity head.

Long-term interest: an attention-pooled summary of the whole history (learned relevance weights
w_j = exp(a . e_j)), computed for every prefix at once with cumulative sums. At serving time it is
two running sums per user (sum w_j e_j, sum w_j), so it can be computed in batch over thousands of
events and updated incrementally, as PinnerFormer's daily embedding; the short-term encoder
(with `short_window`) sees only the most recent events, as TransAct does in real time.
Fusion: g = sigmoid(W_g [s; l] + b); u = g * s + (1 - g) * l, learned per dimension.
Multi-interest: K queries u_k = u + W_k u; an item's score is the best over the K.
"""
import torch
from torch import nn

from .heads import DotHead, MolHead
from .hstu import Hstu
from .items import ItemTower
from .sasrec import SasRec
from .task_heads import TaskHeads

LOG_WEIGHT_FLOOR = -60.0  # exp(-60) ~ 1e-26: far above float32's smallest normal


class LongTermPool(nn.Module):
    """Causal attention pooling: position i gets sum_{j<=i} w_j e_j / sum_{j<=i} w_j, projected."""

    def __init__(self, dim):
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens, valid):
        logits = self.score(tokens).squeeze(-1).masked_fill(~valid, float("-inf"))
        top = logits.max(dim=1, keepdim=True).values.detach().clamp_min(-1e4)
        weights = torch.exp((logits - top).clamp_min(LOG_WEIGHT_FLOOR)) * valid
        num = torch.cumsum(weights[..., None] * tokens, dim=1)
        den = torch.cumsum(weights, dim=1)[..., None]
        return self.proj(num / den.clamp_min(1e-30))


class Fusion(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)

    def forward(self, short, long):
        g = torch.sigmoid(self.gate(torch.cat([short, long], dim=-1)))
        return g * short + (1 - g) * long


class UserModel(nn.Module):
    """ids (B, L) [+ times, actions] -> queries (B, L, K, d): the user after each event."""

    def __init__(self, cfg, num_items, num_actions=0, item_features=None, num_features=0, scenarios=()):
        super().__init__()
        d = cfg["dim"]
        self.cfg = dict(cfg)
        self.items = ItemTower(num_items, d, item_features if cfg.get("sideInfo", True) else None,
                               num_features if cfg.get("sideInfo", True) else 0)
        self.actions = nn.Embedding(num_actions + 1, d, padding_idx=0) if num_actions else None
        if self.actions is not None:  # at the items' scale: N(0, 1) would drown the item signal in every token
            nn.init.normal_(self.actions.weight, std=0.02)
            with torch.no_grad():
                self.actions.weight[0].zero_()
        common = dict(dim=d, layers=cfg["layers"], heads=cfg["heads"], dropout=cfg["dropout"], max_len=cfg["maxLen"],
                      window=cfg.get("shortWindow", 0))
        if cfg["model"] == "hstu":
            self.encoder = Hstu(num_buckets=cfg.get("timeBuckets", 64), **common)
        elif cfg["model"] == "sasrec":
            self.encoder = SasRec(**common)
        else:
            raise ValueError(f"unknown model kind {cfg['model']}")
        self.long = LongTermPool(d) if cfg.get("longTerm") else None
        self.fuse = Fusion(d) if cfg.get("longTerm") else None
        k = cfg.get("interests", 1)
        self.interests = nn.Linear(d, k * d) if k > 1 else None
        m = cfg["mol"]
        self.mol = MolHead(d, d, m["queryComponents"], m["itemComponents"], m["componentDim"], m["gatingWidth"],
                           m["temperature"]) if cfg["head"] == "mol" else None
        self.dot = DotHead(cfg.get("temperature", 0.05), cfg.get("l2norm", True)) if cfg["head"] == "dot" else None
        self.uses_times = cfg["model"] == "hstu" and cfg.get("useTimes", True)
        self.task_heads = None
        if cfg.get("tasks"):  # one dot head per label (and scenario) over the normalised state: task_heads.py
            self.task_heads = TaskHeads(d, cfg["tasks"], scenarios, cfg["scenarioHeads"], cfg["towers"], cfg["experts"],
                                        cfg["esmm"], cfg.get("temperature", 0.05))

    @property
    def head(self):
        """The similarity head (its weights, if any, are under `mol.`; the dot head has none)."""
        return self.mol if self.mol is not None else self.dot

    def tokens(self, ids, actions=None):
        x = self.items(ids)
        if self.actions is not None and actions is not None:
            x = x + self.actions(actions)
        return x

    def forward(self, ids, times=None, actions=None):
        valid = ids > 0
        tokens = self.tokens(ids, actions)
        states = self.encoder(tokens, valid, times if self.uses_times else None)
        if self.long is not None:
            states = self.fuse(states, self.long(tokens, valid))
        b, n, d = states.shape
        if self.interests is None:
            return states[:, :, None, :]
        return states[:, :, None, :] + self.interests(states).view(b, n, -1, d)
