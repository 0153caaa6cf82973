"""The single-head objective: every event is a target, each position predicts the next event, and
the model is judged by leave-one-out full ranking (split.py, metrics.py). The multi-task objective
(multitask.py) has the same methods, so the training loop does not know which one it runs."""
import numpy as np

from .errors import ConfigError
from .evaluate import evaluate
from .loss import full_softmax_loss, sample_negatives, sampled_softmax_loss
from .metrics import PROTOCOLS
from .split import TrainingWindows, leave_one_out


def fixed_subset(count, wanted, seed):
    """A fixed random subset of range(count) of size `wanted` (sorted), or None for all."""
    if not 0 < wanted < count:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, wanted, replace=False))


def event_columns(events):
    return {"ids": events.items, "times": events.times, "actions": events.actions}


class NextItem:
    scenario_names = ()
    blends = {}

    def __init__(self, interactions, cfg):
        self.interactions, self.cfg = interactions, cfg
        self.split = leave_one_out(interactions, cfg["dropShort"])
        if len(self.split.train_users) == 0:
            raise ConfigError(f"{interactions.source}: no user has 4 or more events, so leave-one-out leaves nothing to train on")
        starts = interactions.offsets[self.split.train_users]
        self.windows = TrainingWindows(event_columns(interactions), starts, self.split.train_ends, cfg["maxLen"] + 1)
        self.val_users = fixed_subset(len(self.split.validation.users), cfg["valUsers"], cfg["seed"])
        self.num_actions = len(interactions.action_names)
        self.action_names = interactions.action_names

    def epoch_batches(self, epoch):
        return self.windows.epoch_batches(self.cfg["batchSize"], np.random.default_rng(self.cfg["seed"] * 1000 + epoch))

    def loss(self, model, rows, device):
        batch = self.windows.batch(rows, device)
        ids, times, actions = batch["ids"], batch["times"], batch["actions"]
        inputs, targets = ids[:, :-1], ids[:, 1:]
        mask = (inputs > 0) & (targets > 0)
        queries = model(inputs, None if times is None else times[:, :-1], None if actions is None else actions[:, :-1])[mask]
        positives = targets[mask]
        table = model.items.table()
        if self.cfg["loss"] == "full":
            return full_softmax_loss(model.head, queries, table, positives)
        negatives = sample_negatives(self.interactions.num_items, self.cfg["negatives"], self.cfg["inBatchNegatives"], positives)
        return sampled_softmax_loss(model.head, queries, table, positives, negatives)

    def validate(self, model, device):
        protocol = self.cfg["protocol"]
        return evaluate(model, self.interactions, self.split.validation, (protocol,), users=self.val_users, device=device)[protocol]

    def final(self, model, device):
        """(test, validation) metrics of the model under every protocol."""
        return (evaluate(model, self.interactions, self.split.test, PROTOCOLS, device=device),
                evaluate(model, self.interactions, self.split.validation, PROTOCOLS, device=device))

    def headline(self, test):
        protocol = self.cfg["protocol"]
        return [(protocol, test[protocol])]

    def counts(self):
        return {"trainUsers": int(len(self.split.train_users)), "validationUsers": int(len(self.split.validation.users)),
                "testUsers": int(len(self.split.test.users))}

    def scenario_weights(self, model, device):
        return None
