#pragma once
// The IVF coarse step (which lists to visit) on cangen's exact kernels: the centroids of a flat
// coarse quantizer packed as panels with an int8 copy (flat/reduced_panels.h), whose scan returns
// exactly the fp32 answer (ties aside) for less than half the time at batch 1. FAISS's IndexFlat
// answers fewer than 20 queries with one dot product call per centroid, which made the coarse
// step most of a single query's time.
#include <cstdint>
#include <optional>

#include "flat/panel_store.h"

namespace faiss {
struct Index;
struct IndexIVF;
}  // namespace faiss

namespace cangen {

class IvfCoarse {
 public:
  // Packs the centroids of `index` when it is a trained IndexIVF (not wrapped in a transform)
  // whose quantizer is a flat index with one centroid per list; otherwise clears, and FAISS's
  // own search is used.
  void rebuild(const faiss::Index* index);
  // The IndexIVF whose centroids are packed, or nullptr.
  const faiss::IndexIVF* ivf() const { return ivf_; }
  // nq x nprobe list numbers, nearest first, and their distances in FAISS's convention (squared
  // L2 distance, or inner product) as search_preassigned expects. queries: nq x dim, prepared.
  void assign(const float* queries, int nq, int nprobe, int threads, int64_t* lists, float* distances) const;

 private:
  const faiss::IndexIVF* ivf_ = nullptr;
  std::optional<PanelStore> centroids_;
};

}  // namespace cangen
