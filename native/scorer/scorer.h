#pragma once
// A learned scorer over a table of ads: dot (two-tower), MLP or Mixture-of-Logits (scorer/model.h),
// with multi-head outputs blended per request. It owns the ads (ids and what the model needs of
// each ad, precomputed at add time: the raw embedding, or the ad's half of the first layer, or the
// normalised MoL item components and the item half of the gating layer) in 16-ad panels, and
// scores every eligible ad, or a candidate list per user, keeping the top-k in one pass.
//
// Or it attaches to an AdIndex (attach()): then it keeps no ads of its own. Its per-ad planes
// are a SlotColumn of the index, in the index's slot numbering, staged by the index's upserts and
// renumbered by its compactions, and a search reads the index's ids, liveness and compiled
// filters under the index's shared lock: one id space and one eligibility for both.
//
// Precision (Fp32 by default): a Bf16 or Int8 scorer keeps, beside its fp32 planes, a reduced copy
// that a full scan reads first, then scores a window of candidates per user in fp32, so every
// returned score is the fp32 score of that ad. Dot (Bf16 or Int8): the flat index's reduced scan,
// whose proven error bound makes the answer the fp32 answer (flat/exact_search.h). MLP and MoL
// (Bf16 only): the window is the best k x rerankFactor by bf16 score; no cheap bound survives
// the non-linear layers, so the answer's recall against the fp32 scan is measured, not proven.
// Candidate lists and score() always run fp32.
//
// Thread-safe like AdIndex: searches share a lock, add() takes it alone.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ann/ad_index.h"
#include "ann/slot_column.h"
#include "common/aligned_buffer.h"
#include "common/cancel.h"
#include "common/fair_shared_mutex.h"
#include "common/search_result.h"
#include "flat/reduced_panels.h"
#include "scorer/model.h"
#include "scorer/tile.h"
#include "scorer/tile_bf16.h"

namespace cangen {

namespace gpu {
class GpuScorer;
}

struct ScorerRequest {
  const float* users = nullptr;        // nu x userDim
  int nu = 0;
  const float* headWeights = nullptr;  // heads: score = sum_h w_h head_h
  // Eligibility (at most one): a byte per ad in insertion order (size() bytes, non-zero =
  // eligible; not for an attached scorer), a list of eligible ids, or a filter compiled by the
  // index the scorer is attached to. None: every (live) ad.
  const CompiledFilter* filter = nullptr;
  const uint8_t* eligibleMask = nullptr;
  size_t eligibleMaskLength = 0;
  const int64_t* eligibleIds = nullptr;
  size_t eligibleIdCount = 0;
  // Candidates: nu x candidatesPerUser ids (-1 entries skipped, repeats ranked once), or null to
  // scan every ad. Every other id must be one of the scorer's ads (attached: ids not live in the
  // index, e.g. removed since a first stage returned them, are skipped).
  const int64_t* candidates = nullptr;
  int candidatesPerUser = 0;
  int k = 10;
  int threads = 0;     // 0: the scorer's default
  bool fused = true;   // false: score everything into an array, then select (for comparison)
  // Bf16 MLP and MoL scorers' full scan: candidates kept per user for the fp32 re-scoring = k x
  // this (0: kDefaultRerankFactor). Must be 0 for other scorers.
  int rerankFactor = 0;
  Device device = Device::Cpu;
  int gpuDevice = 0;
  // Raised by the caller: the CPU scan stops between chunks of tiles with ErrorCode::Aborted.
  CancelFlag cancel;
};

constexpr int kDefaultRerankFactor = 4;
constexpr int kMaxRerankFactor = 64;

class Scorer : public SlotColumn, public std::enable_shared_from_this<Scorer> {
 public:
  // Throws Error(InvalidArgument) for Int8 with an MLP or MoL model (bf16 only there).
  Scorer(ScorerModel model, int threads, Precision precision = Precision::Fp32);
  ~Scorer();
  Scorer(const Scorer&) = delete;
  Scorer& operator=(const Scorer&) = delete;

  const ScorerModel& model() const { return model_; }
  // Ads: its own, or the attached index's live ones.
  size_t size() const;
  const char* simdName() const { return kernels_.name; }
  Precision precision() const { return precision_; }
  // The reduced scan's kernels ("avx512-bf16", "avx2-int8", ...), or "none" for fp32.
  const char* reducedSimdName() const;
  // Bytes each ad takes in this scorer's planes: fp32, plus the reduced copy if any.
  size_t bytesPerAd() const;

  // Adds n ads (embeddings n x itemDim). All or nothing, like AdIndex::upsert. Not once attached.
  void add(const int64_t* ids, const float* embeddings, size_t n);

  // Reads its ads from `index` from now on (index dim == itemDim; the scorer holds no ads yet).
  // Precomputes every slot of the index under its exclusive lock. Must be owned by a shared_ptr.
  void attach(std::shared_ptr<AdIndex> index);
  bool attached() const;

  // SlotColumn: driven by the attached index under its exclusive lock.
  void stage(const float* vectors, size_t n, size_t first) override;
  void prepareKeep(const std::vector<uint32_t>& keep) override;
  void commitKeep() noexcept override;

  SearchResult search(const ScorerRequest& request) const;

  // Blended scores, nu x n, of the listed ads (ids null: every ad, n ignored, in insertion order).
  std::vector<float> score(const float* users, int nu, const float* headWeights, const int64_t* ids, size_t n,
                           int threads) const;

  // Floating-point operations the fused scan spends per (user, ad) pair (for the benchmarks).
  double flopsPerPair() const;

 private:
  struct Prepared;
  struct Table;
  // Runs `read` over the ads a search sees: its own under its lock, or the attached index's
  // slots (eligible: `filter`'s, or the live ones) under the index's shared lock.
  void withTable(const CompiledFilter* filter, const std::function<void(const Table&)>& read) const;
  Prepared prepare(const float* users, int nu, const float* headWeights) const;
  std::vector<uint64_t> eligibility(const ScorerRequest& request, const Table& table) const;
  std::vector<std::vector<uint32_t>> candidateSlots(const ScorerRequest& request, const Table& table,
                                                    const uint64_t* eligible) const;
  std::vector<float> scoreSlots(const Prepared& prepared, int nu, const std::vector<uint32_t>& slots, int threads) const;
  size_t scratchFloats() const;
  void scoreTile(const Prepared& prepared, int user, const TileIn* planes, float* scratch, float* scores) const;
  void searchCpu(const Prepared& prepared, const ScorerRequest& request, size_t count, const uint64_t* eligible,
                 const std::vector<std::vector<uint32_t>>* candidates, int64_t* outSlots, float* outScores) const;
  // False (with the reason) when the device cannot run this search: the caller scores on the CPU.
  bool searchGpu(const Prepared& prepared, const ScorerRequest& request, size_t count, const uint64_t* eligible,
                 int64_t* outSlots, float* outScores, std::string* fallbackReason) const;
  bool searchGpuLocked(const Prepared& prepared, const ScorerRequest& request, size_t count, const uint64_t* eligible,
                       int64_t* outSlots, float* outScores, std::string* fallbackReason) const;
  TileIn planeTile(int plane, size_t tile) const;
  void precompute(const float* embeddings, size_t n, size_t firstSlot);
  // Room for `slots` slots in every plane (and the reduced copy).
  void resizePlanes(size_t slots);
  // The reduced copy of slots [first, first + n) from their fp32 planes.
  void encodeReduced(size_t first, size_t n, const std::vector<AlignedBuffer<float>>& planes, AlignedBuffer<uint32_t>& words,
                     ReducedPanels* reduced) const;
  void checkPrecisionRequest(const ScorerRequest& request) const;
  // The reduced full scans (see the class comment); outputs as searchCpu.
  void searchReduced(const Prepared& prepared, const ScorerRequest& request, size_t count, const uint64_t* eligible,
                     int64_t* outSlots, float* outScores) const;
  std::vector<std::vector<uint32_t>> bf16Window(const Prepared& prepared, const ScorerRequest& request, size_t count,
                                                const uint64_t* eligible) const;

  const ScorerModel model_;
  const int threads_;
  const TileKernels& kernels_;
  MlpPlan mlp_;
  MolPlan mol_;
  PackedDense itemHalf_;   // per-ad precomputation: W_x (mlp without cross), K (mol keys)
  PackedDense gateItem_;   // mol: G_x
  std::vector<int> planeRows_;               // rows of each per-ad plane
  std::vector<AlignedBuffer<float>> planes_;  // panel layout (flat/panels.h), whole 32-ad tiles
  std::vector<AlignedBuffer<float>> keptPlanes_;  // prepareKeep's renumbered copy
  // The reduced copy. Bf16 MLP (with the cross feature: the raw embedding) and MoL (the item
  // components): wordRows_ bf16 pairs per ad in panels (flat/panels.h), whole 32-ad tiles. Dot:
  // the flat index's reduced panels over plane 0. Others: nothing.
  const Precision precision_;
  const TileKernelsBf16& bf16Kernels_;
  MlpPlanBf16 mlpBf16_;
  MolPlanBf16 molBf16_;
  int wordRows_ = 0;
  AlignedBuffer<uint32_t> words_, keptWords_;
  std::unique_ptr<ReducedPanels> reduced_, keptReduced_;

  mutable FairSharedMutex mutex_;  // the scorer's own ads, and which index it is attached to
  std::shared_ptr<AdIndex> index_;
  std::vector<int64_t> ids_;
  std::unordered_map<int64_t, uint32_t> slotOfId_;
  size_t count_ = 0;
  mutable std::unique_ptr<gpu::GpuScorer> gpu_;
  mutable int gpuDeviceId_ = -1;
  mutable size_t firstDirtyAd_ = 0;
  mutable std::mutex gpuMutex_;
};

}  // namespace cangen
