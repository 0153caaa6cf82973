"""The multi-task objective: events have a label (their action: view / cart / buy, or engagement /
click / conversion) and optionally a scenario; every label in cfg["tasks"] gets a head (per
scenario with cfg["scenarioHeads"]), all reading one shared encoder whose input tokens carry each
past event's label (and scenario, with cfg["scenarioInput"]).

Split, per user:
- test: the log's own held-out events (a `split` column, as in published multi-behaviour splits),
  else the last event of each label;
- validation: one more event of the target label (the last, or a random one with unordered
  logs), for a fixed subset of users (cfg["valUsers"]) or all;
- training: every other event. Ordered logs keep time order; with cfg["unordered"] (a log without
  time, e.g. Tmall) every epoch reads each user's events in a fresh random order, so each position
  predicts a random held-back event from a random subset of the others.

Loss: sampled (or full) softmax per position whose next event has a label with a head; each
label's loss is its mean over its positions in the batch and the batch loss is the weighted mean
over the labels present, so a batch without conversions neither fails nor dilutes the others.

Evaluation ranks every item for each held-out event with its label's head, under "seen" (the
user's training items of that label are excluded, the protocol of MB-CGCN / CRGCN / DA-GCN on
Tmall) and "raw" (nothing excluded).
"""
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .evaluate import batch_inputs
from .loss import sample_negatives
from .metrics import summarize
from .models.task_heads import head_names
from .objectives import event_columns, fixed_subset
from .split import TrainingWindows

MULTITASK_PROTOCOLS = ("seen", "raw")
BLEND_GRID = (0.0, 1.0, 3.0)  # candidate weights per label when a scenario's blend is learned from rewards


@dataclass
class Events:
    """A subset of the log's events in CSR form (user u's are [offsets[u], offsets[u+1]))."""

    offsets: np.ndarray
    items: np.ndarray
    times: object
    actions: object  # input tokens (label, or label@scenario)
    heads: np.ndarray  # head index of each event as a target, -1 when its label has no head
    tasks: np.ndarray  # task index of each event, -1 when none


def csr_offsets(users, num_users):
    """Offsets of events grouped by user (users ascending)."""
    return np.concatenate([[0], np.cumsum(np.bincount(users, minlength=num_users))]).astype(np.int64)


def subset(events, keep, num_users, users):
    """The events where `keep` is true, in the same order; `users` is each event's user."""
    offsets = csr_offsets(users[keep], num_users)
    pick = lambda a: None if a is None else a[keep]
    return Events(offsets, events.items[keep], pick(events.times), pick(events.actions), events.heads[keep], events.tasks[keep])


@dataclass
class HeadExamples:
    """Evaluation examples: input events [starts, ends) of a source `Events`, the target item, its
    head, label (task index) and scenario index."""

    users: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    targets: np.ndarray
    heads: np.ndarray
    tasks: np.ndarray
    scenarios: np.ndarray


def shuffled_within_users(events, rng):
    """The same events with each user's block in a random order."""
    users = np.repeat(np.arange(len(events.offsets) - 1), np.diff(events.offsets))
    order = np.lexsort((rng.random(len(users)), users))
    pick = lambda a: None if a is None else a[order]
    return Events(events.offsets, events.items[order], pick(events.times), pick(events.actions), events.heads[order], events.tasks[order])


def head_loss(queries, table, positives, head_tasks, task_weights, negatives=None):
    """queries (P, d) already projected by their heads, table (N + 1, d) normalised items,
    positives (P,), head_tasks (P,) task index of each position, task_weights (T,) tensor.
    Per-label mean of the softmax cross-entropy, then the weighted mean over the labels present."""
    if negatives is None:
        ce = F.cross_entropy(queries @ table[1:].T, positives - 1, reduction="none")
    else:
        pos = (queries * table[positives]).sum(-1)
        neg = (queries @ table[negatives].T).masked_fill(negatives[None, :] == positives[:, None], float("-inf"))
        ce = F.cross_entropy(torch.cat([pos[:, None], neg], dim=1), torch.zeros_like(positives), reduction="none")
    tasks = len(task_weights)
    sums = torch.zeros(tasks, dtype=ce.dtype, device=ce.device).index_add_(0, head_tasks, ce)
    counts = torch.bincount(head_tasks, minlength=tasks).to(ce.dtype)
    present = counts > 0
    if not bool(present.any()):
        return queries.sum() * 0.0
    weights = task_weights.to(ce.dtype) * present
    return (weights * sums / counts.clamp_min(1)).sum() / weights.sum().clamp_min(1e-12)


class MultiTask:
    def __init__(self, interactions, cfg):
        self.interactions, self.cfg = interactions, cfg
        tasks = cfg["tasks"]
        if interactions.actions is None:
            raise ConfigError(f"{interactions.source}: --tasks needs events with a label (an action, behavior or type column)")
        absent = [t for t in tasks if t not in interactions.action_names]
        if absent:
            raise ConfigError(f"{interactions.source}: no events labelled {absent}; the log's labels are {interactions.action_names}")
        wants_scenarios = cfg["scenarioHeads"] or cfg["scenarioInput"]
        if wants_scenarios and interactions.scenarios is None:
            raise ConfigError(f"{interactions.source}: --scenario-heads and --scenario-input need a scenario column")
        self.tasks, self.target = list(tasks), cfg["target"] or tasks[-1]
        self.scenario_names = list(interactions.scenario_names)
        scenario = interactions.scenarios - 1 if interactions.scenarios is not None else np.zeros(len(interactions.items), np.int64)
        self.event_scenarios = scenario
        per_scenario = len(self.scenario_names) if cfg["scenarioHeads"] else 1
        self.head_names = head_names(self.tasks, self.scenario_names, cfg["scenarioHeads"])
        task_of_action = np.array([-1] + [self.tasks.index(a) if a in self.tasks else -1 for a in interactions.action_names])
        task = task_of_action[interactions.actions]
        heads = np.where(task >= 0, task * per_scenario + (scenario if cfg["scenarioHeads"] else 0), -1)
        if cfg["scenarioInput"]:
            s = len(self.scenario_names)
            tokens = (interactions.actions - 1) * s + scenario + 1
            self.action_names = [f"{a}@{sc}" for a in interactions.action_names for sc in self.scenario_names]
        else:
            tokens, self.action_names = interactions.actions, list(interactions.action_names)
        self.num_actions = len(self.action_names)
        everything = Events(interactions.offsets, interactions.items, interactions.times, tokens, heads, task)
        users = np.repeat(np.arange(interactions.num_users), interactions.lengths)
        self._split(everything, users)
        self.task_weights = torch.tensor([float(cfg["taskWeights"].get(t, 1.0)) for t in self.tasks])

    # -- split ------------------------------------------------------------------------------
    def _split(self, everything, users):
        cfg, n_users = self.cfg, self.interactions.num_users
        position = np.arange(len(everything.items))
        if self.interactions.held_out is not None:
            test = self.interactions.held_out & (everything.tasks >= 0)
            dropped = self.interactions.held_out & ~test  # held-out events of labels without a head stay out
        else:
            test = last_of_each(users, everything.tasks, position)
            dropped = np.zeros(len(position), bool)
        target_task = self.tasks.index(self.target)
        history = ~test & ~dropped
        rng = np.random.default_rng(cfg["seed"])
        # Validation holds out one event of the target label, or of every label when scenario weights
        # are to be learned from rewards (they are chosen on those events).
        groups = everything.tasks if cfg["scenarioRewards"] else np.where(everything.tasks == target_task, 0, -1)
        groups = np.where(history, groups, -1)
        key = np.where(groups >= 0, rng.random(len(position)), -1.0) if cfg["unordered"] else position
        validation = last_of_each(users, groups, key)
        pairs = users * (len(self.tasks) + 1) + groups
        values, counts = np.unique(pairs[groups >= 0], return_counts=True)
        validation &= np.isin(pairs, values[counts >= 2])  # a user keeps at least one event of the label to learn from
        val_users_all = np.flatnonzero(np.bincount(users[validation], minlength=n_users) > 0)
        keep = fixed_subset(len(val_users_all), cfg["valUsers"], cfg["seed"])
        if keep is not None:
            validation &= np.isin(users, val_users_all[keep])
        self.history = subset(everything, history, n_users, users)
        self.train = subset(everything, history & ~validation, n_users, users)
        self.everything = everything
        lengths = np.diff(self.train.offsets)
        self.train_users = np.flatnonzero(lengths >= 2)
        if len(self.train_users) == 0:
            raise ConfigError(f"{self.interactions.source}: no user has 2 training events after the held-out ones")
        if not validation.any():
            raise ConfigError(f"{self.interactions.source}: no user has a second '{self.target}' event to hold out for validation "
                              f"(each needs one left to train on); choose another --target or add data")
        self.test = self._examples(np.flatnonzero(test), users, self.history)
        self.validation = self._examples(np.flatnonzero(validation), users, self.train)
        self.seen_test = self._seen(self.history)
        self.seen_validation = self._seen(self.train)
        self._windows_of(self.train)

    def _examples(self, at, users, inputs):
        """Examples for the events at positions `at`: ordered logs read the events before each one
        (from the whole log), unordered ones the user's `inputs` events."""
        u = users[at]
        e = self.everything
        if self.cfg["unordered"]:
            starts, ends, source = inputs.offsets[u], inputs.offsets[u + 1], inputs
        else:
            starts, ends, source = e.offsets[u], at, e
        ok = ends > starts
        ex = HeadExamples(u[ok], starts[ok], ends[ok], e.items[at][ok], e.heads[at][ok], e.tasks[at][ok], self.event_scenarios[at][ok])
        return ex, source

    def _seen(self, events):
        """Per task: the CSR (offsets, items) of each user's events of that label in `events`."""
        n_users = self.interactions.num_users
        users = np.repeat(np.arange(n_users), np.diff(events.offsets))
        out = []
        for t in range(len(self.tasks)):
            sel = events.tasks == t
            out.append((csr_offsets(users[sel], n_users), events.items[sel]))
        return out

    def _windows_of(self, events):
        self.windows = TrainingWindows({**event_columns(events), "heads": events.heads},
                                       events.offsets[self.train_users], events.offsets[self.train_users + 1], self.cfg["maxLen"] + 1)

    # -- training ---------------------------------------------------------------------------
    def epoch_batches(self, epoch):
        rng = np.random.default_rng(self.cfg["seed"] * 1000 + epoch)
        if self.cfg["unordered"]:
            self._windows_of(shuffled_within_users(self.train, rng))
        return self.windows.epoch_batches(self.cfg["batchSize"], rng)

    def loss(self, model, rows, device):
        batch = self.windows.batch(rows, device)
        ids, times, actions, heads = batch["ids"], batch["times"], batch["actions"], batch["heads"]
        inputs, targets, target_heads = ids[:, :-1], ids[:, 1:], heads[:, 1:]
        mask = (inputs > 0) & (targets > 0) & (target_heads >= 0)
        states = model(inputs, None if times is None else times[:, :-1], None if actions is None else actions[:, :-1])[:, :, 0]
        head = target_heads[mask]
        queries = model.task_heads.queries(F.normalize(states[mask], dim=-1), head)
        positives = targets[mask]
        table = F.normalize(model.items.table(), dim=-1)
        negatives = None
        if self.cfg["loss"] == "sampled":
            negatives = sample_negatives(self.interactions.num_items, self.cfg["negatives"], self.cfg["inBatchNegatives"], positives)
        per_scenario = len(self.scenario_names) if self.cfg["scenarioHeads"] else 1
        return head_loss(queries, table, positives, head // per_scenario, self.task_weights.to(device), negatives)

    # -- evaluation -------------------------------------------------------------------------
    def _batches(self, model, examples, seen, device, batch_size=256):
        """Yields (rows, normalised user states (B, d), targets (B, 1), seen items (B, W), 0-padded)
        over the examples, similar input lengths batched together."""
        ex, source = examples
        pick = np.argsort(ex.ends - ex.starts, kind="stable")
        for s in range(0, len(pick), batch_size):
            r = pick[s:s + batch_size]
            ids, times, actions = batch_inputs(source, ex.starts[r], ex.ends[r], self.cfg["maxLen"], device)
            states = F.normalize(model(ids, times, actions)[:, -1, 0], dim=-1)
            lists = [seen[t][1][seen[t][0][u]:seen[t][0][u + 1]] for u, t in zip(ex.users[r], ex.tasks[r])]
            masks = np.zeros((len(r), max(1, max(len(x) for x in lists))), np.int64)
            for row, items in enumerate(lists):
                masks[row, :len(items)] = items
            yield r, states, torch.as_tensor(ex.targets[r], device=device)[:, None], torch.as_tensor(masks, device=device)

    @staticmethod
    def _target_ranks(scores, targets, masks):
        """{protocol: (B,) ranks} of the targets among items 1..N; scores (B, N) for items 1..N."""
        base = torch.cat([scores.new_full((len(scores), 1), float("-inf")), scores], dim=1)
        target_scores = base.gather(1, targets)
        raw = (base >= target_scores).sum(1)
        # the user's earlier items of the label leave the ranking; the target stays even when it repeats one
        seen = (base.scatter_(1, masks, float("-inf")).scatter_(1, targets, target_scores) >= target_scores).sum(1)
        return {"raw": raw, "seen": seen}

    @torch.no_grad()
    def ranks(self, model, examples, seen, device="cpu"):
        """{protocol: ranks (E,)} of each example's target among all items under its head."""
        ex, _ = examples
        was_training = model.training
        model.eval()
        table = F.normalize(model.items.table(), dim=-1)[1:]
        out = {p: torch.empty(len(ex.users), dtype=torch.long) for p in MULTITASK_PROTOCOLS}
        for r, states, targets, masks in self._batches(model, examples, seen, device):
            queries = model.task_heads.queries(states, torch.as_tensor(ex.heads[r], device=device))
            for protocol, ranks in self._target_ranks(queries @ table.T, targets, masks).items():
                out[protocol][torch.as_tensor(r)] = ranks.cpu()
        model.train(was_training)
        return out

    @torch.no_grad()
    def _learn_blend(self, model, scenario, rewards, device, cutoff=50):
        """The label weights (from BLEND_GRID) whose blend of `scenario`'s heads earns the most reward
        on the validation events of that scenario: sum over events of reward[label] x [target in the
        top `cutoff`, 'seen' protocol], per event. Returns (weights, every candidate's score)."""
        ex, _ = self.validation
        s = self.scenario_names.index(scenario) if scenario in self.scenario_names else None
        keep = np.ones(len(ex.users), bool) if s is None else ex.scenarios == s
        sub = HeadExamples(*(getattr(ex, f)[keep] for f in ("users", "starts", "ends", "targets", "heads", "tasks", "scenarios")))
        heads = [model.task_heads.index(t, scenario if self.cfg["scenarioHeads"] else None) for t in self.tasks]
        candidates = [w for w in itertools.product(BLEND_GRID, repeat=len(self.tasks)) if any(w)]
        earned = np.zeros(len(candidates))
        table = F.normalize(model.items.table(), dim=-1)[1:]
        was_training = model.training
        model.eval()
        for r, states, targets, masks in self._batches(model, (sub, self.validation[1]), self.seen_validation, device):
            per_task = model.task_heads.all_queries(states)[:, heads]  # (B, T, d)
            reward = torch.tensor([float(rewards.get(self.tasks[t], 0.0)) for t in sub.tasks[r]])
            for c, w in enumerate(candidates):
                query = torch.einsum("btd,t->bd", per_task, torch.tensor(w, dtype=per_task.dtype, device=device))
                hits = self._target_ranks(query @ table.T, targets, masks)["seen"].cpu() <= cutoff
                earned[c] += float((reward * hits).sum())
        model.train(was_training)
        events = max(1, len(sub.users))
        best = int(np.argmax(earned))
        return dict(zip(self.tasks, candidates[best])), {"events": len(sub.users), "cutoff": cutoff,
                                                        "candidates": [{"weights": dict(zip(self.tasks, w)), "rewardPerEvent": e / events}
                                                                       for w, e in zip(candidates, earned)]}

    def _report(self, examples, ranks):
        """{"seen": {label: metrics, label@scenario: metrics}, "raw": {...}}."""
        ex, _ = examples
        report = {}
        for protocol, r in ranks.items():
            groups = {}
            for t, task in enumerate(self.tasks):
                sel = ex.tasks == t
                if sel.any():
                    groups[task] = summarize(r[torch.as_tensor(sel)])
                    if len(self.scenario_names) > 1:
                        for s, name in enumerate(self.scenario_names):
                            both = sel & (ex.scenarios == s)
                            if both.any():
                                groups[f"{task}@{name}"] = summarize(r[torch.as_tensor(both)])
            report[protocol] = groups
        return report

    def validate(self, model, device):
        return self._report(self.validation, self.ranks(model, self.validation, self.seen_validation, device=device))["seen"][self.target]

    def final(self, model, device):
        test = self._report(self.test, self.ranks(model, self.test, self.seen_test, device=device))
        validation = self._report(self.validation, self.ranks(model, self.validation, self.seen_validation, device=device))
        return test, validation

    def headline(self, test):
        return [(f"seen, {task}", test["seen"][task]) for task in self.tasks if task in test["seen"]]

    def counts(self):
        ex = lambda e: {task: int((e[0].tasks == t).sum()) for t, task in enumerate(self.tasks)}
        return {"trainUsers": int(len(self.train_users)), "trainEvents": int(len(self.train.items)),
                "validationExamples": ex(self.validation), "testExamples": ex(self.test), "tasks": self.tasks,
                "target": self.target, "heads": self.head_names}

    def scenario_weights(self, model, device):
        """{scenario: {head: weight}} for the scorer: --scenario-weights where given, else learned from
        --scenario-rewards on validation (self.blends keeps every candidate's score), else each label
        at its loss weight."""
        chosen, rewards = self.cfg["scenarioWeights"], self.cfg["scenarioRewards"]
        out, self.blends = {}, {}
        for s in self.scenario_names or ["default"]:
            if s in chosen:
                by_task = chosen[s]
            elif rewards:
                by_task, self.blends[s] = self._learn_blend(model, s, rewards, device)
            else:
                by_task = {t: float(self.cfg["taskWeights"].get(t, 1.0)) for t in self.tasks}
            out[s] = {(f"{t}@{s}" if self.cfg["scenarioHeads"] else t): float(w) for t, w in by_task.items()}
        return out


def last_of_each(users, groups, key):
    """Bool per event: the event with the largest `key` among its user's events of each group
    (groups < 0 take no part)."""
    sel = np.flatnonzero(groups >= 0)
    if len(sel) == 0:
        return np.zeros(len(users), bool)
    order = sel[np.lexsort((key[sel], groups[sel], users[sel]))]
    last = np.ones(len(order), bool)
    same = (users[order][1:] == users[order][:-1]) & (groups[order][1:] == groups[order][:-1])
    last[:-1] = ~same
    out = np.zeros(len(users), bool)
    out[order[last]] = True
    return out
