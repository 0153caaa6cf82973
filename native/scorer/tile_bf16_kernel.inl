// The scorer's bf16 tiles (scorer/tile_bf16.h), included by tile_avx2.cc and tile_avx512.cc after
// tile_kernel.inl, whose helpers (load, store, layerNorm, activate, mlpTileWith, molTileWith) they
// reuse. CANGEN_REDUCED_DOT (AVX-512 BF16 builds) selects VDPBF16PS for the dot-product steps.
#ifdef CANGEN_REDUCED_DOT
#include <immintrin.h>
#endif

#include "scorer/tile_bf16.h"

namespace cangen {
namespace CANGEN_TILE_NS {
namespace {

#include "flat/reduced_dot.inl"

// One register block (as denseBlock) over pairs of input rows.
inline void denseBf16Block(const uint32_t* w, int pairs, const TileWords& x, int ad0, const float* bias,
                           const TileIn* init, int row0, float* out) {
  vf acc[RB][NV];
  const uint32_t* xp[NV];
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
  for (int g = 0; g < pairs; ++g) {
    vi xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = loadWords(xp[v] + g * stride);
    const uint32_t* wg = w + static_cast<size_t>(g) * kRowBlock;
#pragma GCC unroll 16
    for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = dotBf16(acc[r][v], wg[r], xv[v]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(out + r * kTileAds + ad0 + v * W, acc[r][v]);
}

// out (p.outPad rows of 32) = p applied to x, plus bias and an optional fp32 per-ad init.
void denseBf16(const PackedPairs& p, const TileWords& x, const float* bias, const TileIn* init, float* out) {
  for (int b = 0; b < p.outPad / kRowBlock; ++b) {
    const uint32_t* block = p.words.data() + static_cast<size_t>(b) * p.pairs * kRowBlock;
    for (int sub = 0; sub < kRowBlock; sub += RB) {
      const int row0 = b * kRowBlock + sub;
      for (int ad0 = 0; ad0 < kTileAds; ad0 += NV * W) {
        denseBf16Block(block + sub, p.pairs, x, ad0, bias ? bias + row0 : nullptr, init, row0, out + row0 * kTileAds);
      }
    }
  }
}

typedef uint32_t vu __attribute__((vector_size(W * sizeof(uint32_t))));

// fp32 bits rounded to nearest even at bf16 precision (the upper 16 bits are the bf16 value).
inline vu bf16Rounded(vf x) {
  vu u;
  std::memcpy(&u, &x, sizeof u);
  return u + 0x7FFFu + ((u >> 16) & 1u);
}

// Rows (an even count) of fp32 activations, 32 ads each, as bf16 pairs (the values are finite).
TileWords toWords(const float* h, int rows, uint32_t* words) {
  for (int g = 0; g < rows / 2; ++g) {
    for (int v = 0; v < kTileVectors; ++v) {
      const vu low = bf16Rounded(load(h + (2 * g) * kTileAds + v * W));
      const vu high = bf16Rounded(load(h + (2 * g + 1) * kTileAds + v * W));
      const vu word = (high & 0xFFFF0000u) | (low >> 16);
      std::memcpy(words + g * kTileAds + v * W, &word, sizeof word);
    }
  }
  return TileWords{words, words + 16, kTileAds};
}

void mlpTileBf16(const MlpPlan& plan, const MlpPlanBf16& bf16, const MlpUserPlan& user, const PackedPairs& first,
                 const TileIn& x, const TileWords& xw, float* scratch, uint32_t* words, float* scores) {
  mlpTileWith(
      plan, user, x, scratch, scores, [&](float* h) { denseBf16(first, xw, user.firstBias.data(), nullptr, h); },
      [&](size_t l, const float* h, int rowsPad, float* next) {
        const PackedDense& p = plan.layers[l];
        denseBf16(bf16.layers[l], toWords(h, rowsPad, words), p.bias.empty() ? nullptr : p.bias.data(), nullptr, next);
      });
}

void molTileBf16(const MolPlan& plan, const MolPlanBf16& bf16, const MolUserPlan& user, const PackedPairs& query,
                 const TileWords& keys, const TileIn& gate, float* scratch, uint32_t* words, float* scores) {
  molTileWith(
      plan, user, scratch, scores,
      [&](int j, float* out) {
        const size_t offset = static_cast<size_t>(j) * bf16.keyPairs * keys.stride;
        denseBf16(query, TileWords{keys.lo + offset, keys.hi + offset, keys.stride}, nullptr, nullptr, out);
      },
      [&](const float* logits, float* hidden) {
        denseBf16(bf16.gateLogits, toWords(logits, plan.itemComponents * plan.queryPad, words), user.gateBias.data(),
                  &gate, hidden);
      },
      [&](const float* hidden, float* gates) {
        denseBf16(bf16.gateOut, toWords(hidden, plan.gateLogits.outPad, words), plan.gateOut.bias.data(), nullptr, gates);
      });
}

}  // namespace

const TileKernelsBf16 kernelsBf16{CANGEN_TILE_NAME "-bf16", mlpTileBf16, molTileBf16};

}  // namespace CANGEN_TILE_NS
}  // namespace cangen
