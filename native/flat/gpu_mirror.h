#pragma once
// The device copy of a PanelStore, made on the first GPU search and kept in step by uploading
// only what changed since the last one. Owners call markDirty() under their write lock and
// search() under their read lock; the mirror serialises GPU searches itself.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "flat/panels.h"

namespace cangen {

namespace gpu {
class GpuFlatSearcher;
}

class GpuMirror {
 public:
  GpuMirror();
  ~GpuMirror();
  // Ads from `firstAd` on changed (appended, overwritten or renumbered).
  void markDirty(size_t firstAd);
  // Prepared queries as for the CPU kernel; internal scores out. eligible may be null.
  void search(const PanelView& view, const float* queries, int nq, int k, const uint64_t* eligible, int device,
              int64_t* outSlots, float* outScores);

 private:
  std::mutex mutex_;
  std::unique_ptr<gpu::GpuFlatSearcher> searcher_;
  int device_ = -1;
  size_t firstDirtyAd_ = 0;
};

}  // namespace cangen
