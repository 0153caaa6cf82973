#include "ann/faiss_writes.h"

#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "ann/faiss_call.h"
#include "common/all_or_nothing.h"

namespace cangen {

namespace {

using idx_t = faiss::Index::idx_t;

// The IVF index inside an optional pre-transform (OPQ), and the transform.
struct IvfParts {
  faiss::IndexPreTransform* pre = nullptr;
  faiss::IndexIVF* ivf = nullptr;
};

IvfParts ivfParts(faiss::Index& index) {
  IvfParts parts;
  faiss::Index* inner = &index;
  if ((parts.pre = dynamic_cast<faiss::IndexPreTransform*>(inner))) inner = parts.pre->index;
  parts.ivf = dynamic_cast<faiss::IndexIVF*>(inner);
  return parts;
}

// IVF with plain array lists: everything that allocates (transform, assignment, encoding, list
// growth) comes first; the entries are then written into capacity that is already there.
void addToArrayLists(const IvfParts& parts, faiss::ArrayInvertedLists& lists, const float* x, size_t n,
                     int64_t firstId, ListPositions* positions) {
  faiss::IndexIVF& ivf = *parts.ivf;
  const float* xt = parts.pre ? parts.pre->apply_chain(static_cast<idx_t>(n), x) : x;
  std::unique_ptr<const float[]> ownedXt(xt == x ? nullptr : xt);
  std::vector<idx_t> listOf(n);
  ivf.quantizer->assign(static_cast<idx_t>(n), xt, listOf.data());
  std::vector<uint8_t> codes(n * ivf.code_size);
  ivf.encode_vectors(static_cast<idx_t>(n), xt, listOf.data(), codes.data());
  std::vector<size_t> added(ivf.nlist, 0);
  for (idx_t list : listOf) {
    if (list >= 0) added[static_cast<size_t>(list)]++;
  }
  for (size_t l = 0; l < ivf.nlist; ++l) {
    if (added[l] == 0) continue;
    reserveRoom(lists.ids[l], lists.ids[l].size() + added[l]);
    reserveRoom(lists.codes[l], (lists.ids[l].size() + added[l]) * ivf.code_size);
  }
  if (positions) positions->reserve(static_cast<size_t>(firstId) + n);
  // Commit: no allocation from here on. FAISS appends each entry at the end of its list.
  if (positions) positions->extendTo(static_cast<size_t>(firstId) + n);
  for (size_t i = 0; i < n; ++i) {
    if (listOf[i] < 0) continue;
    const size_t list = static_cast<size_t>(listOf[i]);
    if (positions) positions->place(static_cast<size_t>(firstId) + i, list, lists.ids[list].size());
    lists.add_entry(list, firstId + static_cast<idx_t>(i), codes.data() + i * ivf.code_size);
  }
  ivf.ntotal += static_cast<idx_t>(n);
  if (parts.pre) parts.pre->ntotal = ivf.ntotal;
}

// HNSW: FAISS grows the storage and the level tables on this thread before it links anything (in
// its parallel part), so a throw leaves only appended tails, which are cut off again.
void addToHnsw(faiss::IndexHNSW& index, const float* x, size_t n) {
  auto* storage = dynamic_cast<faiss::IndexFlatCodes*>(index.storage);
  if (storage == nullptr) {
    index.add(static_cast<idx_t>(n), x);  // no storage we know how to restore: FAISS as it is
    return;
  }
  faiss::HNSW& graph = index.hnsw;
  const idx_t n0 = index.ntotal;
  const size_t levels = graph.levels.size(), offsets = graph.offsets.size(), neighbors = graph.neighbors.size();
  try {
    index.add(static_cast<idx_t>(n), x);
  } catch (...) {
    storage->codes.resize(static_cast<size_t>(n0) * storage->code_size);
    storage->ntotal = n0;
    index.ntotal = n0;
    graph.levels.resize(levels);
    graph.offsets.resize(offsets);
    graph.neighbors.resize(neighbors);
    throw;
  }
}

}  // namespace

void addToFaiss(faiss::Index& index, const float* x, size_t n, int64_t firstId, ListPositions* positions) {
  if (n == 0) return;
  const IvfParts parts = ivfParts(index);
  if (parts.ivf != nullptr) {
    if (faiss::ArrayInvertedLists* lists = ListPositions::trackedLists(index)) {
      callFaiss("add", [&] { addToArrayLists(parts, *lists, x, n, firstId, positions); });
      return;
    }
    // Other list layouts (factory strings): FAISS's add, and its entries removed again on failure.
    std::vector<idx_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = firstId + static_cast<idx_t>(i);
    try {
      callFaiss("add", [&] { index.add_with_ids(static_cast<idx_t>(n), x, ids.data()); });
    } catch (...) {
      try {
        faiss::IDSelectorRange added(firstId, firstId + static_cast<idx_t>(n));
        index.remove_ids(added);
      } catch (...) {
        // The live bitmap hides entries of slots the catalog does not have.
      }
      throw;
    }
    return;
  }
  if (index.ntotal != firstId) throw Error(ErrorCode::Internal, "slot and FAISS position disagree");
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(&index)) {
    callFaiss("add", [&] { addToHnsw(*hnsw, x, n); });
    return;
  }
  auto* flatCodes = dynamic_cast<faiss::IndexFlatCodes*>(&index);
  try {
    callFaiss("add", [&] { index.add(static_cast<idx_t>(n), x); });
  } catch (...) {
    if (flatCodes != nullptr) {  // codes grown, then encoding failed
      flatCodes->codes.resize(static_cast<size_t>(firstId) * flatCodes->code_size);
      flatCodes->ntotal = firstId;
    }
    throw;
  }
}

void dropFromLists(faiss::Index& index, const std::vector<uint32_t>& ids, ListPositions& positions) noexcept {
  const IvfParts parts = ivfParts(index);
  if (parts.ivf == nullptr || ids.empty()) return;
  faiss::ArrayInvertedLists* lists = ListPositions::trackedLists(index);
  if (lists == nullptr) {
    try {
      std::vector<idx_t> sorted(ids.begin(), ids.end());
      faiss::IDSelectorBatch selector(sorted.size(), sorted.data());
      index.remove_ids(selector);
    } catch (...) {
      // Left in the lists; the live bitmap hides them.
    }
    return;
  }
  const size_t codeSize = lists->code_size;
  size_t dropped = 0;
  for (uint32_t slot : ids) {
    if (!positions.has(slot)) continue;  // never listed (no list assigned), or dropped already
    const size_t list = positions.list(slot), at = positions.offset(slot);
    std::vector<idx_t>& entries = lists->ids[list];
    std::vector<uint8_t>& codes = lists->codes[list];
    const size_t last = entries.size() - 1;
    if (at != last) {  // the list's last entry takes this one's place
      entries[at] = entries[last];
      std::memcpy(codes.data() + at * codeSize, codes.data() + last * codeSize, codeSize);
      positions.place(static_cast<size_t>(entries[at]), list, at);
    }
    entries.pop_back();  // shrinking: no allocation
    codes.resize(last * codeSize);
    positions.forget(slot);
    ++dropped;
  }
  parts.ivf->ntotal -= static_cast<idx_t>(dropped);
  if (parts.pre) parts.pre->ntotal = parts.ivf->ntotal;
}

void renumberLists(faiss::Index& index, const std::vector<int64_t>& renumber, const std::vector<uint32_t>& kept,
                   ListPositions& positions) noexcept {
  const IvfParts parts = ivfParts(index);
  if (parts.ivf == nullptr) return;
  // Compaction requires array lists (the only layout this project builds or loads).
  auto* lists = dynamic_cast<faiss::ArrayInvertedLists*>(parts.ivf->invlists);
  if (lists == nullptr) return;
  for (size_t l = 0; l < lists->nlist; ++l) {
    for (idx_t& id : lists->ids[l]) id = id >= 0 ? renumber[static_cast<size_t>(id)] : -1;
  }
  if (ListPositions::trackedLists(index) != nullptr) positions.renumber(kept);
}

}  // namespace cangen
