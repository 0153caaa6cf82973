"""HSTU against a slow, independent reference: explicit loops over (batch, head, query, key) in
float64 with the paper's formulas, sharing nothing with the module but its weights."""
import math
import unittest

import torch

from cangen_train.models.hstu import Hstu, HstuLayer, time_buckets
from cangen_train.models.masks import attention_allowed


def silu(x):
    return x / (1.0 + math.exp(-x))


def bucket(gap, num_buckets):
    return min(num_buckets, max(0, math.floor(math.log(max(abs(gap), 1)) / 0.301)))


def layer_norm(vec):
    mean = sum(vec) / len(vec)
    var = sum((x - mean) ** 2 for x in vec) / len(vec)
    return [(x - mean) / math.sqrt(var + 1e-5) for x in vec]


def reference_layer(layer, x, valid, times, window):
    """Y = X + W_2 (LN(A V) * U) with A_ij = SiLU(q_i.k_j + rab_ij) / max_len on allowed pairs."""
    b_n, n, d = x.shape
    h, dqk, dv = layer.heads, layer.qk_dim, layer.v_dim
    w1, b1 = layer.uvqk.weight.double().tolist(), layer.uvqk.bias.double().tolist()
    w2, b2 = layer.out.weight.double().tolist(), layer.out.bias.double().tolist()
    pos_w, ts_w = layer.bias.position.double().tolist(), layer.bias.time.double().tolist()
    out = torch.zeros(b_n, n, d, dtype=torch.float64)
    for b in range(b_n):
        proj = []
        for i in range(n):
            normed = layer_norm(x[b, i].double().tolist())
            proj.append([silu(sum(w1[r][c] * normed[c] for c in range(d)) + b1[r]) for r in range(len(b1))])
        for i in range(n):
            u = proj[i][:h * dv]
            attended = []
            for head in range(h):
                q = proj[i][2 * h * dv + head * dqk: 2 * h * dv + (head + 1) * dqk]
                acc = [0.0] * dv
                for j in range(n):
                    allowed = (j <= i and bool(valid[b, j]) and (window == 0 or i - j < window)) or i == j
                    if not allowed:
                        continue
                    k = proj[j][2 * h * dv + h * dqk + head * dqk: 2 * h * dv + h * dqk + (head + 1) * dqk]
                    rab = pos_w[min(i - j, len(pos_w) - 1)]
                    if times is not None:
                        rab += ts_w[bucket(int(times[b, i]) - int(times[b, j]), len(ts_w) - 1)]
                    a = silu(sum(qq * kk for qq, kk in zip(q, k)) + rab) / layer.max_len
                    v = proj[j][h * dv + head * dv: h * dv + (head + 1) * dv]
                    acc = [s + a * vv for s, vv in zip(acc, v)]
                attended.extend(acc)
            gated = [g * uu for g, uu in zip(layer_norm(attended), u)]
            for r in range(d):
                out[b, i, r] = x[b, i, r].double() + sum(w2[r][c] * gated[c] for c in range(len(gated))) + b2[r]
    return out


class HstuReferenceTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(3)
        self.x = torch.randn(2, 6, 8, dtype=torch.float64)
        self.valid = torch.tensor([[False, False, True, True, True, True], [True] * 6])
        self.times = torch.tensor([[0, 0, 100, 105, 4000, 4000], [1, 2, 30, 900, 90000, 10 ** 7]])

    def check(self, heads, window, times):
        layer = HstuLayer(dim=8, heads=heads, qk_dim=3, v_dim=4, dropout=0.0, max_len=6, num_buckets=20).double().eval()
        with torch.no_grad():
            layer.bias.position.normal_(std=0.5)
            layer.bias.time.normal_(std=0.5)
            got = layer(self.x, attention_allowed(self.valid, window), times)
        want = reference_layer(layer, self.x, self.valid, times, window)
        rows = self.valid  # padded rows are never read
        torch.testing.assert_close(got[rows], want[rows], rtol=1e-9, atol=1e-9)

    def test_layer_matches_reference_with_times(self):
        self.check(heads=2, window=0, times=self.times)

    def test_layer_matches_reference_without_times_and_with_window(self):
        self.check(heads=1, window=2, times=None)

    def test_time_buckets(self):
        t = torch.tensor([[0, 1, 2, 10, 1000, 10 ** 9]])
        got = time_buckets(t, 30)[0, :, 0].tolist()
        self.assertEqual(got, [bucket(int(v), 30) for v in t[0]])
        self.assertEqual(got[:3], [0, 0, 2])  # |dt| <= 1 -> bucket 0; ln 2 / 0.301 = 2.3 -> 2
        self.assertEqual(got[-1], 30)  # capped

    def test_causal_future_events_do_not_change_the_past(self):
        enc = Hstu(dim=8, layers=2, heads=2, dropout=0.0, max_len=6).eval()
        tokens = torch.randn(1, 6, 8)
        valid = torch.ones(1, 6, dtype=torch.bool)
        changed = tokens.clone()
        changed[0, 4:] = torch.randn(2, 8)
        with torch.no_grad():
            a, b = enc(tokens, valid), enc(changed, valid)
        torch.testing.assert_close(a[0, :4], b[0, :4])
        self.assertFalse(torch.allclose(a[0, 4:], b[0, 4:]))


if __name__ == "__main__":
    unittest.main()
