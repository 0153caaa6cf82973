"""One dot head per label (and per scenario), all reading the shared user state.

Every head h is a linear map P_h of the L2-normalised user state u: score_h(u, x) = (P_h u) . x
with x the L2-normalised item embedding. That is exactly the `dot` kind of cangen's LearnedScorer
with per-head projections (docs/SCORERS.md), so whatever the towers below learn, the export is
the stack of the H matrices and serving blends heads by scenario at no cost.

- separate towers: each label t owns P_t, initialised to I / temperature (the single-task head).
- gated towers (MMoE-style): E shared experts W_e; label t mixes them with its own softmax gate,
  P_t = sum_e softmax(g_t)_e W_e. The gates are per label (and scenario), not per user, which is
  what keeps the heads linear and servable by the index.
- scenario heads (STAR-style): P_{t,s} = P_t * M_s elementwise, a scenario mask M_s (init 1)
  shared by the labels, so scenarios share the label's centre weights and adjust them.
- ESMM: with "click:conversion" the conversion head is P_click + P_cvr: the conversion logit is
  the click logit plus a conversion-given-click logit (log pCTCVR = log pCTR + log pCVR), and it
  is trained on conversions against every item, the whole exposure space, not on clicked items only.
"""
import torch
from torch import nn


def head_names(tasks, scenarios, per_scenario):
    """Head h's name: the label, or `label@scenario` with per-scenario heads (labels outer)."""
    return [f"{t}@{s}" for t in tasks for s in scenarios] if per_scenario else list(tasks)


class TaskHeads(nn.Module):
    def __init__(self, dim, tasks, scenarios=(), per_scenario=False, towers="separate", experts=4, esmm="", temperature=0.05):
        super().__init__()
        self.tasks, self.scenarios = list(tasks), list(scenarios) if per_scenario else []
        self.names = head_names(self.tasks, self.scenarios, per_scenario)
        self.towers = towers
        eye = torch.eye(dim) / temperature
        if towers == "gated":
            self.experts = nn.Parameter(eye.repeat(experts, 1, 1) + torch.randn(experts, dim, dim) * (0.02 / temperature))
            self.gates = nn.Parameter(torch.zeros(len(self.names), experts))
        else:
            self.projections = nn.Parameter(eye.repeat(len(self.tasks), 1, 1))
        self.scenario_masks = nn.Parameter(torch.ones(len(self.scenarios), dim, dim)) if self.scenarios else None
        self.esmm = None
        if esmm:
            click, conversion = esmm.split(":")
            self.esmm = (self.tasks.index(click), self.tasks.index(conversion))

    def index(self, task, scenario=None):
        """Head index of a label (and scenario, with per-scenario heads)."""
        t = self.tasks.index(task)
        return t * len(self.scenarios) + self.scenarios.index(scenario) if self.scenarios else t

    def matrices(self):
        """(H, d, d): P_h, `out x in` as nn.Linear stores it and as the scorer's `dot.proj` reads it."""
        s = max(1, len(self.scenarios))
        if self.towers == "gated":
            per_head = torch.einsum("he,eij->hij", torch.softmax(self.gates, dim=-1), self.experts)
            per_head = per_head.view(len(self.tasks), s, *per_head.shape[1:])
        else:
            per_head = self.projections[:, None].expand(-1, s, -1, -1)
        if self.esmm is not None:
            click, conversion = self.esmm
            add = torch.zeros_like(per_head)
            add[conversion] = per_head[click]
            per_head = per_head + add
        if self.scenario_masks is not None:
            per_head = per_head * self.scenario_masks[None]
        return per_head.reshape(-1, *per_head.shape[2:])

    def all_queries(self, users):
        """users (P, d) normalised states -> (P, H, d): every head's query P_h u."""
        return torch.einsum("pj,hij->phi", users, self.matrices())

    def queries(self, users, heads):
        """users (P, d), heads (P,) head indices -> (P, d) = P_{heads[p]} u_p."""
        return self.all_queries(users)[torch.arange(len(heads), device=users.device), heads]
