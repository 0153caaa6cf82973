#pragma once
// Adds to and removes from a FAISS index so that a failed add leaves it as it was, and a removal
// cannot fail. FAISS 1.7.3's own add can throw half-way (an inverted list or the HNSW level
// tables failing to grow after others grew), and throws from inside OpenMP regions end the
// process, so the lists an add will touch are grown before anything is written, and what FAISS
// allocates before its parallel part is undone when it throws.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ann/list_positions.h"

namespace faiss {
struct Index;
}

namespace cangen {

// Adds n prepared vectors as ids firstId .. firstId+n-1 (FAISS kinds that number by insertion
// order must already hold exactly firstId vectors). All or nothing. When `positions` is given and
// the lists are tracked (ListPositions::trackedLists), the new entries' places are recorded there.
void addToFaiss(faiss::Index& index, const float* x, size_t n, int64_t firstId, ListPositions* positions = nullptr);

// Drops the entries of the listed ids from an IVF index's inverted lists, so that searches stop
// visiting them; a no-op for other kinds, whose dead entries the live bitmap hides. With tracked
// lists each entry is found through `positions` and the last entry of its list takes its place:
// O(1) per id, whatever nlist is. Cannot fail: where the lists are not tracked and FAISS's removal
// fails, the dead entries stay in the lists, where the live bitmap hides them too.
void dropFromLists(faiss::Index& index, const std::vector<uint32_t>& ids, ListPositions& positions) noexcept;

// Compaction of an IVF index: every list entry (a live slot) takes its new number, renumber[old]
// (which must be >= 0 for each), and `positions` follows (new slot i was old slot kept[i]).
void renumberLists(faiss::Index& index, const std::vector<int64_t>& renumber, const std::vector<uint32_t>& kept,
                   ListPositions& positions) noexcept;

}  // namespace cangen
