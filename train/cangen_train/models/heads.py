"""Similarity heads between user queries and items.

`DotHead`: cosine (L2-normalised) or raw dot product, divided by a temperature: ANN-servable.
`MolHead`: Mixture-of-Logits (Zhai et al., KDD 2023) with exactly the maths and tensor names of
cangen's `LearnedScorer` kind "mol" (docs/SCORERS.md), one head, so the exported weights load there.
Both take queries (P, K, d) (K interests; an item's score is the best over the K) and items.
"""
import torch
import torch.nn.functional as F
from torch import nn


class DotHead(nn.Module):
    def __init__(self, temperature=0.05, normalize=True):
        super().__init__()
        self.temperature, self.normalize = temperature, normalize

    def _prep(self, x):
        return F.normalize(x, dim=-1) if self.normalize else x

    def cross(self, queries, items):
        """(P, K, d) x (R, d) -> (P, R)."""
        queries, items = self._prep(queries), self._prep(items)
        if queries.shape[1] == 1:
            return queries[:, 0] @ items.T / self.temperature
        p, k, d = queries.shape
        return (queries.reshape(p * k, d) @ items.T).view(p, k, -1).max(dim=1).values / self.temperature

    def pair(self, queries, items):
        """(P, K, d) x (P, d) -> (P,)."""
        scores = (self._prep(queries) * self._prep(items)[:, None]).sum(-1)
        return scores.max(dim=1).values / self.temperature


class MolHead(nn.Module):
    """score(u, x) = sum_p softmax(gate(u, x, l))_p l_p, l_{i*P_X+j} = <q_i(u), k_j(x)> / temperature."""

    def __init__(self, user_dim, item_dim, query_components, item_components, component_dim, gating_width, temperature):
        super().__init__()
        self.pq, self.px, self.dc, self.temperature = query_components, item_components, component_dim, temperature
        p = query_components * item_components
        self.query_proj = nn.Linear(user_dim, query_components * component_dim)
        self.item_proj = nn.Linear(item_dim, item_components * component_dim)
        self.gate = nn.ModuleDict({
            "user": nn.Linear(user_dim, gating_width),
            "item": nn.Linear(item_dim, gating_width, bias=False),
            "logits": nn.Linear(p, gating_width, bias=False),
            "out": nn.Linear(gating_width, p),
        })

    def _components(self, u, x):
        q = F.normalize(self.query_proj(u).view(*u.shape[:-1], self.pq, self.dc), dim=-1)
        k = F.normalize(self.item_proj(x).view(*x.shape[:-1], self.px, self.dc), dim=-1)
        return q, k

    def _mix(self, logits, gate_user, gate_item):
        g = F.silu(gate_user + gate_item + self.gate["logits"](logits))
        return (torch.softmax(self.gate["out"](g), dim=-1) * logits).sum(-1)

    def cross(self, queries, items, chunk=2048):
        """(P, K, d) x (R, d) -> (P, R), items processed in chunks to bound memory."""
        p, kq, d = queries.shape
        u = queries.reshape(p * kq, d)
        q, _ = self._components(u, u[:0])
        gate_user = self.gate["user"](u)[:, None]
        out = []
        for s in range(0, items.shape[0], chunk):
            x = items[s:s + chunk]
            k = F.normalize(self.item_proj(x).view(x.shape[0], self.px, self.dc), dim=-1)
            logits = torch.einsum("nic,rjc->nrij", q, k).flatten(2) / self.temperature
            out.append(self._mix(logits, gate_user, self.gate["item"](x)[None]))
        scores = torch.cat(out, dim=1) if out else queries.new_zeros((p * kq, 0))
        return scores.view(p, kq, -1).max(dim=1).values

    def pair(self, queries, items):
        """(P, K, d) x (P, d) -> (P,)."""
        p, kq, d = queries.shape
        u = queries.reshape(p * kq, d)
        x = items[:, None].expand(p, kq, items.shape[-1]).reshape(p * kq, -1)
        q, k = self._components(u, x)
        logits = torch.einsum("nic,njc->nij", q, k).flatten(1) / self.temperature
        return self._mix(logits, self.gate["user"](u), self.gate["item"](x)).view(p, kq).max(dim=1).values
