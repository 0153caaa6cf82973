"""Softmax losses over next-item targets.

Sampled softmax: the negatives are shared by the whole batch (one matrix product, no per-event
loop): `uniform` items drawn uniformly from the catalogue plus up to `in_batch` of the batch's own
targets; a negative equal to a row's positive is masked out. Full softmax ranks every item.
"""
import torch
import torch.nn.functional as F


def sample_negatives(num_items, uniform, in_batch, positives, generator=None):
    parts = []
    if uniform > 0:
        parts.append(torch.randint(1, num_items + 1, (uniform,), device=positives.device, generator=generator))
    if in_batch > 0:
        unique = torch.unique(positives)
        if unique.numel() > in_batch:
            pick = torch.randperm(unique.numel(), device=positives.device, generator=generator)[:in_batch]
            unique = unique[pick]
        parts.append(unique)
    return torch.cat(parts) if parts else positives[:0]


def sampled_softmax_loss(head, queries, table, positives, negatives):
    """queries (P, K, d); table (N + 1, d) item embeddings; positives (P,) and negatives (R,) ids."""
    pos = head.pair(queries, table[positives])
    neg = head.cross(queries, table[negatives])
    neg = neg.masked_fill(negatives[None, :] == positives[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(positives))


def full_softmax_loss(head, queries, table, positives):
    logits = head.cross(queries, table[1:])
    return F.cross_entropy(logits, positives - 1)
