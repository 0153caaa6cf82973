// The reduced-precision scans of Scorer (see the class comment in scorer/scorer.h): the reduced
// copy of the planes, and the full scans that read it before scoring a window in fp32.
#include <algorithm>
#include <atomic>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "flat/exact_search.h"
#include "flat/panels.h"
#include "flat/scan.h"
#include "scorer/scorer.h"
#include "scorer/scorer_internal.h"

namespace cangen {

using scorer_detail::kTilesPerChunk;
using scorer_detail::offer;
using scorer_detail::tileMask;
using scorer_detail::tilesOf;

const char* Scorer::reducedSimdName() const {
  if (precision_ == Precision::Fp32) return "none";
  return model_.kind == ScorerKind::Dot ? bestReducedScanName(precision_) : bf16Kernels_.name;
}

size_t Scorer::bytesPerAd() const {
  size_t bytes = 0;
  for (int rows : planeRows_) bytes += static_cast<size_t>(rows) * sizeof(float);
  bytes += static_cast<size_t>(wordRows_) * sizeof(uint32_t);
  if (reduced_) {
    bytes += static_cast<size_t>(wordGroups(model_.itemDim, precision_)) * sizeof(uint32_t);
    if (precision_ == Precision::Int8) bytes += sizeof(float) + sizeof(int32_t);  // code scale and offset
  }
  return bytes;
}

void Scorer::encodeReduced(size_t first, size_t n, const std::vector<AlignedBuffer<float>>& planes,
                           AlignedBuffer<uint32_t>& words, ReducedPanels* reduced) const {
  const int rows = planeRows_[0];
  if (reduced != nullptr) {
    std::vector<float> row(rows);
    for (size_t s = first; s < first + n; ++s) {
      for (int r = 0; r < rows; ++r) row[r] = planes[0][panelOffset(s, rows, r)];
      reduced->set(s, row.data());
    }
  }
  if (wordRows_ == 0) return;
  // Word row w pairs plane rows (2w, 2w + 1), or for MoL component j's rows 2c and 2c + 1 (c = w mod
  // keyPairs): a component's odd last row pairs with zero.
  const int group = model_.kind == ScorerKind::Mol ? model_.componentDim : rows;
  const int groupPairs = (group + 1) / 2;
  auto value = [&](size_t slot, int w, int half) -> uint32_t {
    const int c = 2 * (w % groupPairs) + half;
    return c < group ? toBf16(planes[0][panelOffset(slot, rows, (w / groupPairs) * group + c)]) : 0;
  };
  for (size_t s = first; s < first + n; ++s)
    for (int w = 0; w < wordRows_; ++w) words[panelOffset(s, wordRows_, w)] = value(s, w, 0) | value(s, w, 1) << 16;
}

// What a reduced-precision scorer cannot do is an error, not a quiet fp32 scan.
void Scorer::checkPrecisionRequest(const ScorerRequest& r) const {
  const bool bf16Scan = precision_ == Precision::Bf16 && model_.kind != ScorerKind::Dot;
  if (r.rerankFactor < 0 || r.rerankFactor > kMaxRerankFactor) {
    throw Error(ErrorCode::InvalidArgument, "Expected rerankFactor between 1 and " + std::to_string(kMaxRerankFactor) +
                                                " but received " + std::to_string(r.rerankFactor));
  }
  if (r.rerankFactor != 0 && !bf16Scan) {
    throw Error(ErrorCode::InvalidArgument, std::string("Expected no rerankFactor: it sizes the re-scored window of a bf16 "
                                                        "'mlp' or 'mol' scorer, and this scorer is ") +
                                                precisionName(precision_) + " '" + scorerKindName(model_.kind) + "'");
  }
  if (precision_ == Precision::Fp32 || r.candidates != nullptr) return;
  if (r.device == Device::Gpu) {
    throw Error(ErrorCode::InvalidArgument, std::string("Expected device 'cpu' for the full scan of a ") + precisionName(precision_) +
                                                " scorer: the GPU scan is fp32 only (load the scorer with precision 'fp32')");
  }
  if (!r.fused) {
    throw Error(ErrorCode::InvalidArgument, std::string("Expected the fused mode for a ") + precisionName(precision_) +
                                                " scorer: the unfused mode is the fp32 comparison path");
  }
}

void Scorer::searchReduced(const Prepared& p, const ScorerRequest& r, size_t count, const uint64_t* eligible, int64_t* outSlots,
                           float* outScores) const {
  if (model_.kind == ScorerKind::Dot) {
    // The flat index's problem: its reduced scan and proven window over the same panels.
    const PanelView view{planes_[0].data(), nullptr, count, model_.itemDim};
    ThreadLease lease(requestedThreads(r.threads, threads_));
    exactSearchReduced(view, *reduced_, p.dotQueries.data(), r.nu, r.k, lease.threads(), eligible, outSlots, outScores,
                       r.cancel, nullptr);
    return;
  }
  const std::vector<std::vector<uint32_t>> window = bf16Window(p, r, count, eligible);
  searchCpu(p, r, count, nullptr, &window, outSlots, outScores);
}

// The best k x rerankFactor eligible ads of each user by bf16 score, in slot order.
std::vector<std::vector<uint32_t>> Scorer::bf16Window(const Prepared& p, const ScorerRequest& r, size_t count,
                                                      const uint64_t* eligible) const {
  const int nu = r.nu;
  const size_t keep = std::min<size_t>(count, static_cast<size_t>(r.k) * (r.rerankFactor ? r.rerankFactor : kDefaultRerankFactor));
  const size_t tiles = tilesOf(count);
  const size_t chunks = (tiles + kTilesPerChunk - 1) / kTilesPerChunk;
  // The user's half in bf16: the folded first layer (MLP with the cross feature) or the query components.
  std::vector<PackedPairs> userPairs(nu);
  for (int u = 0; u < nu; ++u) {
    if (model_.kind == ScorerKind::Mol) userPairs[u] = packPairs(p.mol[u].query);
    else if (!mlp_.precomputedFirst) userPairs[u] = packPairs(p.mlp[u].first);
  }
  ThreadLease lease(static_cast<int>(std::min<size_t>(requestedThreads(r.threads, threads_), std::max<size_t>(chunks, 1))));
  const int teams = lease.threads();
  std::vector<std::vector<TopKCollector>> collectors(teams, std::vector<TopKCollector>(nu, TopKCollector(keep)));
  const bool mol = model_.kind == ScorerKind::Mol;
  const size_t scratchWords = mol ? molScratchWords(mol_) : mlpScratchWords(mlp_);
  std::atomic<size_t> next{0};
  parallelTeam(teams, [&](int team, int) {
    AlignedBuffer<float> scratch(scratchFloats());
    AlignedBuffer<uint32_t> words(scratchWords);
    alignas(64) float scores[kTileAds];
    for (size_t c = next.fetch_add(1); c < chunks && !r.cancel.raised(); c = next.fetch_add(1)) {
      for (size_t t = c * kTilesPerChunk; t < std::min(tiles, (c + 1) * kTilesPerChunk); ++t) {
        const uint32_t mask = tileMask(t, count, eligible);
        if (mask == 0) continue;
        const uint32_t* lo = words_.data() + t * 2 * kPanelWidth * wordRows_;
        const TileWords w{lo, lo + kPanelWidth * wordRows_, kPanelWidth};
        const TileIn x = planeTile(0, t);
        for (int u = 0; u < nu; ++u) {
          if (mol) {
            bf16Kernels_.mol(mol_, molBf16_, p.mol[u], userPairs[u], w, planeTile(1, t), scratch.data(), words.data(), scores);
          } else {
            bf16Kernels_.mlp(mlp_, mlpBf16_, p.mlp[u], userPairs[u], x, w, scratch.data(), words.data(), scores);
          }
          offer(collectors[team][u], scores, mask, nullptr, t * kTileAds);
        }
      }
    }
  });
  r.cancel.check();
  std::vector<std::vector<uint32_t>> lists(nu);
  for (int u = 0; u < nu; ++u) {
    for (int t = 1; t < teams; ++t) collectors[0][u].append(collectors[t][u]);
    for (const ScoredSlot& s : collectors[0][u].sorted()) lists[u].push_back(s.slot);
    std::sort(lists[u].begin(), lists[u].end());
  }
  return lists;
}

}  // namespace cangen
