#include "flat/reduced_panels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace cangen {

namespace {

// Symmetric codes in [-127, 127] with one scale per vector.
float int8Scale(const float* v, int dim) {
  float largest = 0;
  for (int j = 0; j < dim; ++j) largest = std::max(largest, std::fabs(v[j]));
  // A vector of subnormal values would get a scale of 0 (then 0 / 0 codes): codes of 0 with scale
  // 1 instead, whose error the bound measures like any other.
  const float scale = largest / 127.0f;
  return scale > 0 ? scale : 1.0f;
}

int8_t int8Code(float value, float scale) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(value / scale), -127.0f, 127.0f));
}

// Encodes v (dim floats) into `groups` words and returns |v - decoded|^2 and |v|^2, in double.
// `scale` is the int8 code scale (unused for bf16); `codeSum` receives the sum of the int8 codes.
struct Encoded {
  double error2 = 0;
  double norm2 = 0;
  int32_t codeSum = 0;
};

Encoded encode(Precision precision, const float* v, int dim, float scale, uint32_t* word, size_t wordStride) {
  Encoded e;
  const int per = dimsPerWord(precision);
  for (int g = 0; g * per < dim; ++g) {
    uint32_t packed = 0;
    for (int b = 0; b < per && g * per + b < dim; ++b) {
      const float x = v[g * per + b];
      double decoded;
      if (precision == Precision::Bf16) {
        const uint16_t h = toBf16(x);
        packed |= static_cast<uint32_t>(h) << (16 * b);
        decoded = fromBf16(h);
      } else {
        const int8_t c = int8Code(x, scale);
        packed |= static_cast<uint32_t>(static_cast<uint8_t>(c)) << (8 * b);
        decoded = static_cast<double>(c) * scale;
        e.codeSum += c;
      }
      e.error2 += (x - decoded) * (x - decoded);
      e.norm2 += static_cast<double>(x) * x;
    }
    word[g * wordStride] = packed;
  }
  return e;
}

// Rounds a bound up so that float rounding of it cannot make it smaller than the true value.
double roundedUp(double bound) { return bound * (1 + 1e-6) + DBL_MIN; }

}  // namespace

// Round to nearest even. Subnormals become zero (VDPBF16PS treats them so; encoding them as zero
// keeps the error bound honest), and a value that would round up to infinity is truncated.
uint16_t toBf16(float f) {
  if (std::fabs(f) < FLT_MIN) return 0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t h = static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  if ((h & 0x7F80u) == 0x7F80u) h = static_cast<uint16_t>(u >> 16);
  return h;
}

float fromBf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

const char* precisionName(Precision precision) {
  switch (precision) {
    case Precision::Fp32: return "fp32";
    case Precision::Bf16: return "bf16";
    case Precision::Int8: return "int8";
  }
  return "unknown";
}

int dimsPerWord(Precision precision) { return precision == Precision::Int8 ? 4 : 2; }

ReducedPanels::ReducedPanels(int dim, Precision precision)
    : dim_(dim), precision_(precision), groups_(wordGroups(dim, precision)) {}

void ReducedPanels::reserveRoom(size_t slots) {
  const size_t panels = panelCount(slots);
  words_.reserveRoom(panels * groups_ * kPanelWidth);
  if (precision_ == Precision::Int8) {
    scale_.reserveRoom(panels * kPanelWidth);
    offset_.reserveRoom(panels * kPanelWidth);
  }
}

void ReducedPanels::resize(size_t slots) {
  reserveRoom(slots);
  const size_t panels = panelCount(slots);
  words_.resize(std::max(words_.size(), panels * groups_ * kPanelWidth));
  if (precision_ == Precision::Int8) {
    scale_.resize(std::max(scale_.size(), panels * kPanelWidth));
    offset_.resize(std::max(offset_.size(), panels * kPanelWidth));
  }
}

void ReducedPanels::set(size_t slot, const float* row) {
  uint32_t* word = words_.data() + (slot / kPanelWidth) * groups_ * kPanelWidth + slot % kPanelWidth;
  const float scale = precision_ == Precision::Int8 ? int8Scale(row, dim_) : 1.0f;
  const Encoded e = encode(precision_, row, dim_, scale, word, kPanelWidth);
  if (precision_ == Precision::Int8) {
    scale_[slot] = scale;
    offset_[slot] = 128 * e.codeSum;
  }
  maxNorm_ = std::max(maxNorm_, roundedUp(std::sqrt(e.norm2)));
  maxError_ = std::max(maxError_, roundedUp(std::sqrt(e.error2)));
}

void ReducedPanels::swap(ReducedPanels& other) noexcept {
  words_.swap(other.words_);
  scale_.swap(other.scale_);
  offset_.swap(other.offset_);
  std::swap(maxNorm_, other.maxNorm_);
  std::swap(maxError_, other.maxError_);
}

void ReducedPanels::clear() {
  words_ = AlignedBuffer<uint32_t>();
  scale_ = AlignedBuffer<float>();
  offset_ = AlignedBuffer<int32_t>();
  maxNorm_ = maxError_ = 0;
}

size_t ReducedPanels::bytes() const {
  return words_.size() * sizeof(uint32_t) + scale_.size() * sizeof(float) + offset_.size() * sizeof(int32_t);
}

ReducedView ReducedPanels::view(const float* bias, size_t count) const {
  return {precision_, words_.data(), scale_.data(), offset_.data(), bias, count, groups_};
}

// The bound. With q' and x' the decoded query and ad, |q.x - q'.x'| <= |q - q'| |x| + |q'| |x - x'|
// (Cauchy-Schwarz) <= |q - q'| N + |q'| E, N and E the corpus's largest norm and encoding error.
// Both scores are also computed in float: the fp32 kernel's fused multiply-adds and the reduced
// kernel's fp32 accumulation (or int32 sum, then scaled) each stay within (dim + 4) float epsilons
// of |q| |x| (plus |bias| for the final addition), and flushed subnormal partial sums add at most
// FLT_MIN per step. Every ad of the exact top k then scores, reduced, within 2 x bound of the
// reduced k-th best, which is the margin.
ReducedQueries ReducedPanels::encodeQueries(const float* queries, int nq, bool withBias) const {
  ReducedQueries out;
  out.words.resize(static_cast<size_t>(nq) * groups_);
  out.scale.assign(nq, 1.0f);
  out.margin.resize(nq);
  const double epsilon = std::ldexp(1.0, -24);
  for (int i = 0; i < nq; ++i) {
    const float* q = queries + static_cast<size_t>(i) * dim_;
    float scale = 1.0f;
    if (precision_ == Precision::Int8) scale = out.scale[i] = int8Scale(q, dim_);
    Encoded e = encode(precision_, q, dim_, scale, out.words.data() + static_cast<size_t>(i) * groups_, 1);
    if (precision_ == Precision::Int8) {
      // The query's codes go to VPDPBUSD as unsigned bytes: code + 128 (ReducedView::offset undoes it).
      for (int g = 0; g < groups_; ++g) out.words[static_cast<size_t>(i) * groups_ + g] ^= 0x80808080u;
    }
    const double queryError = std::sqrt(e.error2);
    const double queryNorm = std::sqrt(e.norm2);
    const double quantization = queryError * maxNorm_ + (queryNorm + queryError) * maxError_;
    const double product = (queryNorm + queryError) * (maxNorm_ + maxError_);
    const double rounding = 2 * (dim_ + 4) * epsilon * (product + (withBias ? maxNorm_ * maxNorm_ : 0)) +
                            4.0 * (dim_ + 4) * FLT_MIN;
    out.margin[i] = static_cast<float>(roundedUp(2 * (quantization + rounding)));
  }
  return out;
}

}  // namespace cangen
