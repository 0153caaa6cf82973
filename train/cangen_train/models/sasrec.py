"""SASRec (Kang and McAuley, 2018): causal softmax self-attention over the item sequence, with
learned absolute positions, pre-LayerNorm blocks and a point-wise feed-forward network."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .masks import attention_allowed


class SelfAttention(nn.Module):
    def __init__(self, dim, heads, dropout):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, allowed):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(b, n, d))


class SasRecBlock(nn.Module):
    def __init__(self, dim, heads, dropout, ffn_mult):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn_in = nn.Linear(dim, dim * ffn_mult)
        self.ffn_out = nn.Linear(dim * ffn_mult, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, allowed):
        x = x + self.dropout(self.attn(self.attn_norm(x), allowed))
        return x + self.dropout(self.ffn_out(self.dropout(F.gelu(self.ffn_in(self.ffn_norm(x))))))


class SasRec(nn.Module):
    """tokens (B, L, d) with valid (B, L) -> states (B, L, d); state i summarises events <= i."""

    def __init__(self, dim, layers, heads, dropout, max_len, window=0, ffn_mult=4):
        super().__init__()
        self.window = window
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.position.weight, std=0.02)
        self.blocks = nn.ModuleList(SasRecBlock(dim, heads, dropout, ffn_mult) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens, valid, times=None):
        n = tokens.shape[1]
        pos = torch.arange(self.position.num_embeddings - n, self.position.num_embeddings, device=tokens.device)
        x = self.dropout(tokens + self.position(pos)[None]) * valid[..., None]
        allowed = attention_allowed(valid, self.window)
        for block in self.blocks:
            x = block(x, allowed)
        return self.final_norm(x)
