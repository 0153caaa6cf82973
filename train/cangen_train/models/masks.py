"""Which keys each query may attend to in a right-aligned (left-padded) window."""
import torch


def attention_allowed(valid, window=0):
    """Bool (B, L, L): key j is allowed for query i when j <= i, j is a real event, and, with a
    `window` > 0, i - j < window (the short-term encoder then sees only the most recent events).
    The diagonal is always allowed so padded rows never attend to nothing (their outputs are unused)."""
    length = valid.shape[1]
    i = torch.arange(length, device=valid.device)
    rel = i[:, None] - i[None, :]
    causal = rel >= 0
    if window and window > 0:
        causal = causal & (rel < window)
    allowed = causal[None, :, :] & valid[:, None, :]
    return allowed | torch.eye(length, dtype=torch.bool, device=valid.device)[None]
