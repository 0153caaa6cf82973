#pragma once
// The short-term encoders on a CUDA device (native/cuda/sequence_gpu.cu; sequence_gpu_stub.cc
// without CUDA), for SequenceEncoder::encodeOnGpu: the item table, action table and every layer's
// weights live on the device; a batch of users' windows (chosen on the host by SequenceEncoder)
// goes through the token lookup, then per layer
//   HSTU:   LN -> uvqk linear + SiLU -> pointwise attention with the position and time biases
//           fused, LN(a) * U -> out linear + residual
//   SASRec: (tokens + positions) LN' -> qkv linear -> softmax attention -> out linear + residual
//           -> LN' -> ffn_in linear + GELU -> ffn_out linear + residual
// for every position (later layers read every position's keys and values) except in the last
// layer, where only each user's last position is computed; then the final norm of those. One
// launch sequence per batch of users. fp32 on CUDA cores: tiled linear kernels of our own (no
// cuBLAS dependency).
#include <cstdint>
#include <memory>
#include <vector>

#include "sequence/encoders.h"

namespace cangen::gpu {

// Users' windows, flattened: user u's tokens are [offsets[u], offsets[u + 1]), oldest first, and
// every user has at least one (the zero padding token when it has no known event).
struct GpuWindows {
  std::vector<uint32_t> offsets;  // users + 1
  std::vector<int32_t> rows;      // item table row per token; -1: the zero padding token
  std::vector<int32_t> actions;   // action row per token (0: none), or empty: no action embedding
  std::vector<double> times;      // HSTU: seconds per token, or empty: no time bias
  std::vector<int32_t> positions; // SASRec: position row per token (-1: none, the padding token)
};

class GpuSequenceEncoder {
 public:
  // Copies the model to `device`; throws Error(NoDevice) when it is not usable (or CUDA is not
  // compiled in), Error(Internal) when the copy fails.
  GpuSequenceEncoder(int device, const ::cangen::sequence::HstuEncoder& model, const std::vector<float>& itemTable,
                     const std::vector<float>& actionWeight);
  GpuSequenceEncoder(int device, const ::cangen::sequence::SasRecEncoder& model, const std::vector<float>& itemTable,
                     const std::vector<float>& actionWeight);
  ~GpuSequenceEncoder();
  GpuSequenceEncoder(const GpuSequenceEncoder&) = delete;
  GpuSequenceEncoder& operator=(const GpuSequenceEncoder&) = delete;

  int device() const;
  // states: users x dim, each user's final-normed state at its last token. Not thread-safe (the
  // owner serialises calls). Throws Error(Internal) on a CUDA failure, Error(NoDevice) when the
  // context is lost (drop this object).
  void lastStates(const GpuWindows& windows, float* states);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cangen::gpu
