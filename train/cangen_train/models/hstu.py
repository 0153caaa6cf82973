"""HSTU, the sequential transducer of "Actions Speak Louder than Words" (Zhai et al., 2024).

Per layer: U, V, Q, K = split(SiLU(W_1 LayerNorm(X))); A = SiLU(Q K^T + rab) / max_len on the
allowed (causal, real, in-window) pairs and 0 elsewhere, where rab is a learned bias over the
relative position i - j and over the bucketed time gap t_i - t_j; Y = X + W_2 (LayerNorm(A V) * U).
No softmax: the attention weights are not normalised across keys, so a long history is not
diluted into an average, which is the paper's argument for non-stationary item vocabularies.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .masks import attention_allowed

TIME_BUCKET_BASE = 0.301  # log-bucket width: bucket(dt) = floor(ln(max(|dt|, 1)) / 0.301)


def time_buckets(times, num_buckets):
    """Bucket index (B, L, L) of |t_i - t_j| in seconds, logarithmic, capped at num_buckets."""
    gap = (times[:, :, None] - times[:, None, :]).abs().clamp_min(1).to(torch.float32)
    return (torch.log(gap) / TIME_BUCKET_BASE).floor().clamp(0, num_buckets).long()


class RelativeBias(nn.Module):
    """rab(i, j) = w_pos[i - j] (+ w_time[bucket(t_i - t_j)] when times are given)."""

    def __init__(self, max_len, num_buckets):
        super().__init__()
        self.num_buckets = num_buckets
        self.position = nn.Parameter(torch.empty(max_len).normal_(std=0.02))
        self.time = nn.Parameter(torch.empty(num_buckets + 1).normal_(std=0.02))

    def forward(self, length, times=None):
        i = torch.arange(length, device=self.position.device)
        rel = (i[:, None] - i[None, :]).clamp(0, self.position.shape[0] - 1)
        bias = self.position[rel][None]  # (1, L, L)
        if times is not None:
            bias = bias + self.time[time_buckets(times, self.num_buckets)]
        return bias


def hstu_attention(q, k, v, bias, allowed, scale):
    """Pointwise attention: q, k (B, H, L, dqk), v (B, H, L, dv), bias (B or 1, L, L),
    allowed (B, L, L) -> (B, H, L, dv) = (SiLU(q k^T + bias) / scale * allowed) v."""
    weights = F.silu(q @ k.transpose(-1, -2) + bias[:, None]) / scale
    weights = weights * allowed[:, None].to(weights.dtype)
    return weights @ v


class HstuLayer(nn.Module):
    def __init__(self, dim, heads, qk_dim, v_dim, dropout, max_len, num_buckets):
        super().__init__()
        self.heads, self.qk_dim, self.v_dim, self.max_len = heads, qk_dim, v_dim, max_len
        self.uvqk = nn.Linear(dim, heads * (2 * v_dim + 2 * qk_dim))
        self.out = nn.Linear(heads * v_dim, dim)
        self.bias = RelativeBias(max_len, num_buckets)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, allowed, times=None):
        b, n, d = x.shape
        h, dqk, dv = self.heads, self.qk_dim, self.v_dim
        u, v, q, k = torch.split(F.silu(self.uvqk(F.layer_norm(x, (d,)))), [h * dv, h * dv, h * dqk, h * dqk], dim=-1)
        q = q.view(b, n, h, dqk).transpose(1, 2)
        k = k.view(b, n, h, dqk).transpose(1, 2)
        v = v.view(b, n, h, dv).transpose(1, 2)
        attended = hstu_attention(q, k, v, self.bias(n, times), allowed, float(self.max_len))
        attended = attended.transpose(1, 2).reshape(b, n, h * dv)
        return x + self.out(self.dropout(F.layer_norm(attended, (h * dv,)) * u))


class Hstu(nn.Module):
    """tokens (B, L, d) with valid (B, L) and optional times (B, L) -> states (B, L, d)."""

    def __init__(self, dim, layers, heads, dropout, max_len, window=0, qk_dim=None, v_dim=None, num_buckets=64):
        super().__init__()
        qk_dim = qk_dim or dim // heads
        v_dim = v_dim or dim // heads
        self.window = window
        self.layers = nn.ModuleList(HstuLayer(dim, heads, qk_dim, v_dim, dropout, max_len, num_buckets) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens, valid, times=None):
        x = self.dropout(tokens) * valid[..., None]
        allowed = attention_allowed(valid, self.window)
        for layer in self.layers:
            x = layer(x, allowed, times)
        return self.final_norm(x)
