#include "ann/list_positions.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/InvertedLists.h>

#include <string>

#include "common/all_or_nothing.h"
#include "common/error.h"

namespace cangen {

faiss::ArrayInvertedLists* ListPositions::trackedLists(faiss::Index& index) {
  faiss::Index* inner = &index;
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(inner)) inner = pre->index;
  auto* ivf = dynamic_cast<faiss::IndexIVF*>(inner);
  if (ivf == nullptr || !ivf->direct_map.no()) return nullptr;
  return dynamic_cast<faiss::ArrayInvertedLists*>(ivf->invlists);
}

void ListPositions::reserve(size_t slots) { reserveRoom(positions_, slots); }

void ListPositions::extendTo(size_t slots) noexcept {
  if (slots > positions_.size()) positions_.resize(slots, kAbsent);  // within reserve(): no allocation
}

void ListPositions::renumber(const std::vector<uint32_t>& kept) noexcept {
  // kept is ascending, so kept[i] >= i: each position moves down onto one already read.
  for (size_t i = 0; i < kept.size(); ++i) positions_[i] = positions_[kept[i]];
  positions_.resize(kept.size());  // shrinking: no allocation
}

void ListPositions::rebuild(const faiss::ArrayInvertedLists& lists, size_t slots) {
  std::vector<uint64_t> fresh(slots, kAbsent);
  for (size_t l = 0; l < lists.nlist; ++l) {
    const std::vector<faiss::Index::idx_t>& ids = lists.ids[l];
    for (size_t o = 0; o < ids.size(); ++o) {
      if (ids[o] < 0 || static_cast<size_t>(ids[o]) >= slots) {
        throw Error(ErrorCode::CorruptFile, "Corrupt index file: list entry " + std::to_string(ids[o]) + " is not a slot");
      }
      fresh[static_cast<size_t>(ids[o])] = (static_cast<uint64_t>(l) << kOffsetBits) | o;
    }
  }
  positions_.swap(fresh);
}

}  // namespace cangen
