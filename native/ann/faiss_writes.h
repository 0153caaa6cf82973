#pragma once
// Adds to and removes from a FAISS index so that a failed add leaves it as it was, and a removal
// cannot fail. FAISS 1.7.3's own add can throw half-way (an inverted list or the HNSW level
// tables failing to grow after others grew), and throws from inside OpenMP regions end the
// process, so the lists an add will touch are grown before anything is written, and what FAISS
// allocates before its parallel part is undone when it throws.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace faiss {
struct Index;
}

namespace cangen {

// Adds n prepared vectors as ids firstId .. firstId+n-1 (FAISS kinds that number by insertion
// order must already hold exactly firstId vectors). All or nothing.
void addToFaiss(faiss::Index& index, const float* x, size_t n, int64_t firstId);

// Drops the entries of the listed ids (ascending) from an IVF index's inverted lists, so that
// searches stop visiting them; a no-op for other kinds, whose dead entries the live bitmap hides.
// Scans every list (as FAISS's remove_ids does) on up to `threads` threads. Cannot fail: where
// the lists are not plain arrays and FAISS's removal fails, the dead entries stay in the lists,
// where the live bitmap hides them too.
void dropFromLists(faiss::Index& index, const std::vector<uint32_t>& sortedIds, int threads) noexcept;

}  // namespace cangen
