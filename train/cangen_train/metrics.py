"""Full-ranking metrics under the anchors' protocols.

Scores are (B, N + 1): column 0 is the padding item, columns 1..N the catalogue. The target's rank
counts every candidate scoring at least as high as the target, itself included: ties are broken
against the target (the pessimistic choice; the anchors break ties by argpartition/top-k order,
which is arbitrary, so ours is never optimistic).

Protocols (read from each anchor's evaluation code):
- "s3rec": ICLRec / BSARec / S3Rec (`trainers.py`, `generate_rating_matrix_test`): the scores of
  every item the user had before the target (the whole history, not only the model's input window)
  are set to 0, not removed; the padding item (a zero embedding there, score 0) stays a candidate.
- "gr": generative-recommenders (`eval_metrics_v2_from_tensors`, `filter_invalid_ids`): the items
  of the model's input window (the most recent max_len events) are removed; padding is not ranked.
- "raw": nothing masked; the target ranked among all N items.
"""
import math

import torch

PROTOCOLS = ("s3rec", "gr", "raw")
CUTOFFS = (5, 10, 20, 50, 200)


def mask_scores(scores, protocol, full_history, window_history):
    """Applies `protocol` to scores (B, N + 1) in place; histories are (B, H) item ids, 0 = pad."""
    if protocol == "s3rec":
        scores.scatter_(1, full_history, 0.0)
        scores[:, 0] = 0.0
    elif protocol == "gr":
        scores.scatter_(1, window_history, float("-inf"))
        scores[:, 0] = float("-inf")
    elif protocol == "raw":
        scores[:, 0] = float("-inf")
    else:
        raise ValueError(f"unknown protocol {protocol}; expected one of {PROTOCOLS}")
    return scores


def target_ranks(scores, targets):
    """1-based rank of each target, ties counted against it: #{c : s_c >= s_target}."""
    target_scores = scores.gather(1, targets[:, None])
    return (scores >= target_scores).sum(dim=1)


def summarize(ranks, cutoffs=CUTOFFS):
    """HR@K = P(rank <= K); NDCG@K = E[1/log2(rank + 1) if rank <= K] (one relevant item); MRR."""
    ranks = ranks.to(torch.float64)
    out = {}
    for k in cutoffs:
        hit = ranks <= k
        out[f"hr@{k}"] = float(hit.double().mean())
        out[f"ndcg@{k}"] = float(torch.where(hit, 1.0 / torch.log2(ranks + 1), torch.zeros_like(ranks)).mean())
    out["mrr"] = float((1.0 / ranks).mean())
    out["users"] = int(ranks.numel())
    return out


def ndcg_of_rank(rank):
    return 1.0 / math.log2(rank + 1)
