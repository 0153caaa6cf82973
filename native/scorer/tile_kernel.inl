// The scorer's tile kernels, written once over GCC vector types and compiled per instruction set
// by tile_avx2.cc and tile_avx512.cc, which define CANGEN_TILE_NS, CANGEN_LANES, CANGEN_ROWS
// (weight rows per register block) first. See tile.h for the layout.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "scorer/tile.h"

namespace cangen {
namespace CANGEN_TILE_NS {
namespace {

constexpr int W = CANGEN_LANES;           // floats per register
constexpr int RB = CANGEN_ROWS;           // weight rows per register block (divides kRowBlock)
constexpr int NV = (W == 16) ? 2 : 2;     // vectors per block: 32 ads (avx512) or 16 ads (avx2)
constexpr int kTileVectors = kTileAds / W;
typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef int vi __attribute__((vector_size(W * sizeof(int))));
static_assert(kRowBlock % RB == 0, "register blocks split a packed block");

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf broadcast(float s) { return vf{} + s; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }

// e^x to ~2 ulp for x in [-87, 88] (clamped outside): 2^n * e^r with |r| <= ln2/2, degree-6 Taylor.
inline vf vexp(vf x) {
  x = vmax(broadcast(-87.0f), x);
  x = x < broadcast(88.0f) ? x : broadcast(88.0f);
  const vf t = x * 1.44269504088896341f;
  const vi n = __builtin_convertvector(t + (t >= vf{} ? broadcast(0.5f) : broadcast(-0.5f)), vi);
  const vf nf = __builtin_convertvector(n, vf);
  const vf r = x - nf * 0.693145751953125f - nf * 1.428606765330187e-06f;
  vf p = broadcast(1.0f / 720);
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const vi bits = (n + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// One register block: rows [row0, row0 + RB) of a packed block, ads [ad0, ad0 + NV * W).
// out[r][a] = bias[r] + init[r][a] + sum_i w[i][r] * x[i][a].
inline void denseBlock(const float* w, int in, const TileIn& x, int ad0, const float* bias, const TileIn* init,
                       int row0, float* out) {
  vf acc[RB][NV];
  const float* xp[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int a = ad0 + v * W;
    xp[v] = (a < 16 ? x.lo + a : x.hi + (a - 16));
  }
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int a = ad0 + v * W;
      acc[r][v] = bias ? broadcast(bias[r]) : vf{};
      if (init) acc[r][v] += load(init->row(row0 + r, a >= 16) + (a & 15));
    }
  }
  const size_t stride = x.stride;
  for (int i = 0; i < in; ++i) {
    vf xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = load(xp[v] + i * stride);
    const float* wi = w + static_cast<size_t>(i) * kRowBlock;
#pragma GCC unroll 16
    for (int r = 0; r < RB; ++r) {
      const vf b = broadcast(wi[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += b * xv[v];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(out + r * kTileAds + ad0 + v * W, acc[r][v]);
}

// out (p.outPad rows of 32) = packed layer applied to x, plus bias and an optional per-ad init.
void dense(const PackedDense& p, const TileIn& x, const float* bias, const TileIn* init, float* out) {
  for (int b = 0; b < p.outPad / kRowBlock; ++b) {
    const float* block = p.packed.data() + static_cast<size_t>(b) * p.in * kRowBlock;
    for (int sub = 0; sub < kRowBlock; sub += RB) {
      const int row0 = b * kRowBlock + sub;
      for (int ad0 = 0; ad0 < kTileAds; ad0 += NV * W) {
        denseBlock(block + sub, p.in, x, ad0, bias ? bias + row0 : nullptr, init, row0, out + row0 * kTileAds);
      }
    }
  }
}

TileIn scratchIn(const float* buffer) { return TileIn{buffer, buffer + 16, kTileAds}; }

// Layer norm over the first `rows` rows of each ad column (padding rows stay zero).
void layerNorm(float* h, int rows, const std::vector<float>& gamma, const std::vector<float>& beta, float eps) {
  if (gamma.empty()) return;
  const float inv = 1.0f / rows;
  for (int v = 0; v < kTileVectors; ++v) {
    vf mean{}, sq{};
    for (int r = 0; r < rows; ++r) mean += load(h + r * kTileAds + v * W);
    mean *= inv;
    for (int r = 0; r < rows; ++r) {
      const vf d = load(h + r * kTileAds + v * W) - mean;
      sq += d * d;
    }
    vf rstd = sq * inv + eps;
    for (int l = 0; l < W; ++l) rstd[l] = 1.0f / std::sqrt(rstd[l]);
    for (int r = 0; r < rows; ++r) {
      float* p = h + r * kTileAds + v * W;
      store(p, (load(p) - mean) * rstd * gamma[r] + beta[r]);
    }
  }
}

void activate(float* h, int rows, Activation act) {
  for (int i = 0; i < rows * kTileVectors; ++i) {
    const vf z = load(h + i * W);
    store(h + i * W, act == Activation::Relu ? vmax(z, vf{}) : z / (1.0f + vexp(-z)));
  }
}

// An MLP tile with its GEMMs passed in, so that the fp32 and bf16 tiles share the rest:
// first(h) writes the first layer's pre-activations (unless the ads carry them precomputed) and
// layer(l, h, next) hidden layer l + 1's, both with their biases.
template <typename First, typename Layer>
void mlpTileWith(const MlpPlan& plan, const MlpUserPlan& user, const TileIn& x, float* scratch, float* scores,
                 First first, Layer layer) {
  int rows = plan.firstOut;
  int rowsPad = padRows(rows);
  float* h = scratch;
  if (plan.precomputedFirst) {
    for (int r = 0; r < rowsPad; ++r)
      for (int v = 0; v < kTileVectors; ++v) {
        const int a = v * W;
        store(h + r * kTileAds + a, broadcast(user.firstBias[r]) + load(x.row(r, a >= 16) + (a & 15)));
      }
  } else {
    first(h);
  }
  layerNorm(h, rows, plan.firstGamma, plan.firstBeta, plan.eps);
  activate(h, rowsPad, plan.activation);
  float* next = scratch + static_cast<size_t>(mlpBufferRows(plan)) * kTileAds;
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const PackedDense& p = plan.layers[l];
    layer(l, h, rowsPad, next);
    layerNorm(next, p.out, p.gamma, p.beta, plan.eps);
    activate(next, p.outPad, plan.activation);
    std::swap(h, next);
    rows = p.out;
    rowsPad = p.outPad;
  }
  for (int v = 0; v < kTileVectors; ++v) {
    vf s = broadcast(user.outBias);
    for (int r = 0; r < rows; ++r) s += user.outWeights[r] * load(h + r * kTileAds + v * W);
    store(scores + v * W, s);
  }
}

void mlpTile(const MlpPlan& plan, const MlpUserPlan& user, const TileIn& x, float* scratch, float* scores) {
  mlpTileWith(
      plan, user, x, scratch, scores, [&](float* h) { dense(user.first, x, user.firstBias.data(), nullptr, h); },
      [&](size_t l, const float* h, int, float* next) {
        const PackedDense& p = plan.layers[l];
        dense(p, scratchIn(h), p.bias.empty() ? nullptr : p.bias.data(), nullptr, next);
      });
}

// A MoL tile with its GEMMs passed in (see mlpTileWith): logits(j, out) writes item component j's
// qpad logit rows, gating(logits, hidden) the gating layer's pre-activations (user and item halves
// and biases included) and gatesOut(hidden, gates) the gate logits.
template <typename Logits, typename Gating, typename GatesOut>
void molTileWith(const MolPlan& plan, const MolUserPlan& user, float* scratch, float* scores, Logits logitsOf,
                 Gating gating, GatesOut gatesOut) {
  const int pq = plan.queryComponents, qpad = plan.queryPad, px = plan.itemComponents;
  const int p = pq * px;
  float* logits = scratch;  // px * qpad rows: (item component j, query component i)
  float* hidden = logits + static_cast<size_t>(px) * qpad * kTileAds;
  float* gates = hidden + static_cast<size_t>(plan.gateLogits.outPad) * kTileAds;
  for (int j = 0; j < px; ++j) logitsOf(j, logits + static_cast<size_t>(j) * qpad * kTileAds);
  gating(static_cast<const float*>(logits), hidden);
  activate(hidden, plan.gateLogits.outPad, plan.activation);
  gatesOut(static_cast<const float*>(hidden), gates);
  for (int v = 0; v < kTileVectors; ++v) {
    vf total{};
    for (int h = 0; h < plan.heads; ++h) {
      const float* g = gates + static_cast<size_t>(h) * p * kTileAds + v * W;
      vf m = load(g);
      for (int i = 1; i < p; ++i) m = vmax(m, load(g + i * kTileAds));
      vf sum{}, weighted{};
      for (int j = 0; j < px; ++j) {
        for (int i = 0; i < pq; ++i) {
          const vf e = vexp(load(g + (j * pq + i) * kTileAds) - m);
          sum += e;
          weighted += e * load(logits + (j * qpad + i) * kTileAds + v * W);
        }
      }
      total += user.headWeights[h] * weighted / sum;
    }
    store(scores + v * W, total);
  }
}

void molTile(const MolPlan& plan, const MolUserPlan& user, const TileIn& keys, const TileIn& gate, float* scratch,
             float* scores) {
  const size_t dc = plan.componentDim;
  molTileWith(
      plan, user, scratch, scores,
      [&](int j, float* out) {
        const size_t offset = j * dc * keys.stride;
        dense(user.query, TileIn{keys.lo + offset, keys.hi + offset, keys.stride}, nullptr, nullptr, out);
      },
      [&](const float* logits, float* hidden) { dense(plan.gateLogits, scratchIn(logits), user.gateBias.data(), &gate, hidden); },
      [&](const float* hidden, float* gates) { dense(plan.gateOut, scratchIn(hidden), plan.gateOut.bias.data(), nullptr, gates); });
}

}  // namespace

const TileKernels kernels{CANGEN_TILE_NAME, dense, mlpTile, molTile};

}  // namespace CANGEN_TILE_NS
}  // namespace cangen
