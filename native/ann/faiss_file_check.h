#pragma once
// Checks of the FAISS part of a saved AdIndex. faiss::read_index trusts its input: it resizes
// vectors to any length a blob declares and indexes lists and graphs by stored numbers. So the
// blob is walked first (every structure the configuration's kind can produce, every count against
// the bytes that follow it), and the index FAISS builds from it is checked against the catalog
// before any search can use it. Both throw Error(CorruptFile).
#include <cstddef>
#include <cstdint>

#include "ann/ann_config.h"

namespace faiss {
struct Index;
}

namespace cangen {

class Catalog;

// Before faiss::read_index: the blob is exactly the structure `config` builds, and no count in it
// asks for more memory than the bytes present justify.
void checkFaissBlob(const uint8_t* data, size_t size, const AnnConfig& config);

// After faiss::read_index: types, dimensions and metric as configured; IVF lists hold each live
// slot exactly once; other kinds hold one vector per slot; HNSW links and levels stay in range.
void checkFaissIndex(const faiss::Index& index, const AnnConfig& config, const Catalog& catalog);

}  // namespace cangen
