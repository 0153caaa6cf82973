#pragma once
// A reduced-precision copy of the packed corpus (bf16 or int8) that the exact index scans first,
// re-ranking with the fp32 vectors only the candidates an error bound cannot rule out, so that
// the answer is the fp32 answer (flat/exact_search.h states the guarantee).
//
// Layout: panels of kPanelWidth ads as in flat/panels.h, but a panel row holds a group of
// dimensions per ad in one 32-bit word (2 bf16 values or 4 int8 codes, lowest dimension in the
// lowest bits), so one 64-byte load feeds one VDPBF16PS or VPDPBUSD over 16 ads.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/aligned_buffer.h"
#include "flat/panels.h"

namespace cangen {

enum class Precision : uint8_t { Fp32 = 0, Bf16 = 1, Int8 = 2 };

const char* precisionName(Precision precision);

// fp32 -> bf16 rounded to nearest even (subnormals to zero, never rounded up to infinity), and back.
uint16_t toBf16(float f);
float fromBf16(uint16_t h);
// Dimensions per 32-bit word: 2 (bf16) or 4 (int8).
int dimsPerWord(Precision precision);
inline int wordGroups(int dim, Precision precision) {
  return (dim + dimsPerWord(precision) - 1) / dimsPerWord(precision);
}

// The read-only view a reduced kernel scans.
struct ReducedView {
  Precision precision = Precision::Bf16;
  const uint32_t* words = nullptr;  // panelCount(count) * groups * kPanelWidth words
  const float* scale = nullptr;     // int8: per-ad code scale, padded to whole panels
  const int32_t* offset = nullptr;  // int8: 128 x the sum of the ad's codes (undoes the query's +128)
  const float* bias = nullptr;      // as PanelView::bias
  size_t count = 0;
  int groups = 0;
};

// The query side of a reduced scan: nq x groups words, and for int8 each query's code scale.
struct ReducedQueries {
  std::vector<uint32_t> words;
  std::vector<float> scale;
  // Per query, the width of the window below the running k-th best reduced score inside which an
  // ad may still belong to the exact top k (twice the bound on |reduced score - fp32 score|).
  std::vector<float> margin;
};

class ReducedPanels {
 public:
  ReducedPanels(int dim, Precision precision);

  Precision precision() const { return precision_; }
  // Room for `slots` slots; resize() within it cannot fail.
  void reserveRoom(size_t slots);
  void resize(size_t slots);
  // Encodes a row-major fp32 vector into slot `slot` (< the size given to resize()).
  void set(size_t slot, const float* row);
  void swap(ReducedPanels& other) noexcept;
  void clear();
  size_t bytes() const;
  ReducedView view(const float* bias, size_t count) const;

  // queries: nq x dim, prepared (the fp32 kernel's input); withBias: the scores add the L2 bias
  // (-|x|^2), whose float rounding the margin then covers too.
  ReducedQueries encodeQueries(const float* queries, int nq, bool withBias) const;

 private:
  const int dim_;
  const Precision precision_;
  const int groups_;
  AlignedBuffer<uint32_t> words_;
  AlignedBuffer<float> scale_;
  AlignedBuffer<int32_t> offset_;
  // Bounds over every vector encoded since the last clear(): max |x| and max |x - decoded(x)|.
  double maxNorm_ = 0;
  double maxError_ = 0;
};

}  // namespace cangen
