#pragma once
// The scorer's CUDA path (native/cuda/scorer_gpu.cu; scorer_gpu_stub.cc without CUDA): a device
// copy of the ad planes and the model, and a full-corpus scan that scores every eligible ad for a
// batch of users and keeps each user's top-k (k <= kMaxScorerGpuK) without a score matrix.
//
// The host prepares what depends on the user (Scorer::prepare, plain row-major here): the GPU
// does the per-ad work, in fp32 on CUDA cores for now (bf16 tensor-core layers are future work:
// docs/SCORERS.md, "Status").
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scorer/model.h"

namespace cangen::gpu {

constexpr int kMaxScorerGpuK = 100000;

// One user's request, row-major (see scorer/plan.h for what each term is).
struct GpuUserInputs {
  std::vector<float> first;       // mlp: folded first layer, h1 x itemDim (empty: precomputed per ad)
  std::vector<float> firstBias;   // mlp: h1
  std::vector<float> outWeights;  // mlp: last hidden width
  float outBias = 0;
  std::vector<float> query;       // mol: PQ x dc (normalised / temperature); dot: itemDim
  std::vector<float> gateBias;    // mol: G
  std::vector<float> headWeights; // mol: heads
};

// The planes of Scorer (panel layout of flat/panels.h): rows per plane and host pointers.
struct GpuPlaneView {
  std::vector<const float*> planes;
  std::vector<int> rows;
  size_t count = 0;
};

class GpuScorer {
 public:
  GpuScorer(int device, const ScorerModel& model);  // throws Error(NoDevice) when unusable
  ~GpuScorer();
  GpuScorer(const GpuScorer&) = delete;
  GpuScorer& operator=(const GpuScorer&) = delete;

  // Makes the device planes equal to `view`, uploading from the panel of `firstDirtyAd` on.
  void sync(const GpuPlaneView& view, size_t firstDirtyAd);

  // Top-k of every eligible ad (bitmap over slots, or null) for each user. Writes nu x k slots
  // (-1 padding) and scores (best first) and returns true. Returns false, with the reason, when
  // this search cannot run on the device (the model too wide for its shared memory, or too little
  // free memory for one user at this k): the caller scores on the CPU. Throws Error(Internal) with
  // the CUDA error on failure, Error(NoDevice) when the CUDA context is lost (drop this object).
  bool search(const std::vector<GpuUserInputs>& users, const uint64_t* eligible, int k, int64_t* outSlots,
              float* outScores, std::string* fallbackReason);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cangen::gpu
