// checkFaissIndex: what a search, an upsert and a compaction of a loaded index rely on, checked
// on the objects faiss::read_index built (the blob walk already fixed their types and sizes).
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/InvertedLists.h>

#include <cmath>
#include <string>
#include <vector>

#include "ann/catalog.h"
#include "ann/faiss_file_check.h"
#include "common/error.h"

namespace cangen {

namespace {

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::CorruptFile, "Corrupt index file: the FAISS index " + what);
}

// Each live slot exactly once across the lists, nothing else.
void checkIvf(const faiss::IndexIVF& ivf, const Catalog& catalog) {
  auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf.invlists);
  if (lists == nullptr || lists->nlist != ivf.nlist) corrupt("has no array inverted lists");
  if (!ivf.is_trained && catalog.slots() > 0) corrupt("is untrained but the catalog has ads");
  // The coarse step packs the centroids (ann/ivf_coarse.h), and every search ranks them.
  if (auto* flat = dynamic_cast<const faiss::IndexFlat*>(ivf.quantizer)) {
    const float* centroids = flat->get_xb();
    const size_t values = static_cast<size_t>(flat->ntotal) * static_cast<size_t>(flat->d);
    for (size_t i = 0; i < values; ++i) {
      if (!std::isfinite(centroids[i])) corrupt("has a centroid that is not a finite number");
    }
  }
  std::vector<bool> seen(catalog.slots());
  size_t entries = 0;
  for (size_t l = 0; l < lists->nlist; ++l) {
    for (int64_t slot : lists->ids[l]) {
      if (slot < 0 || static_cast<size_t>(slot) >= catalog.slots()) corrupt("lists slot " + std::to_string(slot) + ", not in the catalog");
      if (!catalog.isLive(static_cast<size_t>(slot))) corrupt("lists removed slot " + std::to_string(slot));
      if (seen[static_cast<size_t>(slot)]) corrupt("lists slot " + std::to_string(slot) + " twice");
      seen[static_cast<size_t>(slot)] = true;
      ++entries;
    }
  }
  if (entries != catalog.live()) corrupt("lists " + std::to_string(entries) + " ads but the catalog has " + std::to_string(catalog.live()));
}

// The graph as faiss::HNSW lays it out: node i's links at offsets[i] + cum[level] .. cum[level + 1]
// for levels 0 .. levels[i] - 1, each link -1 (unused, only at the end) or a node present on that level.
void checkHnsw(const faiss::IndexHNSW& index, const AnnConfig& config) {
  const faiss::HNSW& g = index.hnsw;
  const size_t n = static_cast<size_t>(index.ntotal);
  const std::vector<int>& cum = g.cum_nneighbor_per_level;
  if (g.assign_probas.empty() || cum.size() != g.assign_probas.size() + 1 || cum[0] != 0) corrupt("has a malformed level table");
  for (size_t l = 0; l < g.assign_probas.size(); ++l) {
    const double p = g.assign_probas[l];
    if (!(p >= 0 && p <= 1)) corrupt("has a level probability out of range");
    if (cum[l + 1] < cum[l] || cum[l + 1] - cum[l] > 2 * AnnLimits::kMaxHnswM) corrupt("has a malformed neighbour count table");
  }
  const int maxLevels = static_cast<int>(cum.size()) - 1;
  if (g.levels.size() != n || g.offsets.size() != n + 1 || g.offsets[0] != 0) corrupt("has graph arrays of the wrong size");
  int top = 0;
  for (size_t i = 0; i < n; ++i) {
    const int levels = g.levels[i];
    if (levels < 1 || levels > maxLevels) corrupt("has a node on an impossible level");
    if (g.offsets[i + 1] < g.offsets[i] || g.offsets[i + 1] - g.offsets[i] != static_cast<size_t>(cum[levels])) {
      corrupt("has offsets that disagree with the levels");
    }
    top = std::max(top, levels);
  }
  if (g.neighbors.size() != g.offsets[n]) corrupt("has a link array of the wrong size");
  for (size_t i = 0; i < n; ++i) {
    for (int level = 0; level < g.levels[i]; ++level) {
      const size_t begin = g.offsets[i] + static_cast<size_t>(cum[level]), end = g.offsets[i] + static_cast<size_t>(cum[level + 1]);
      bool ended = false;
      for (size_t j = begin; j < end; ++j) {
        const int next = g.neighbors[j];
        if (next < 0) {
          if (next != -1) corrupt("has a negative link");
          ended = true;
        } else if (ended || static_cast<size_t>(next) >= n || g.levels[static_cast<size_t>(next)] <= level) {
          corrupt("links node " + std::to_string(i) + " to a node that is not on its level");
        }
      }
    }
  }
  if (n == 0) {
    if (g.entry_point != -1 || g.max_level != -1) corrupt("has an entry point but no nodes");
  } else if (g.entry_point < 0 || static_cast<size_t>(g.entry_point) >= n || g.max_level != top - 1 ||
             g.levels[static_cast<size_t>(g.entry_point)] != top) {
    corrupt("has an entry point that is not on the top level");
  }
  if (g.efConstruction < 1 || g.efConstruction > AnnLimits::kMaxBeam || g.efSearch < 1 || g.efSearch > AnnLimits::kMaxBeam ||
      g.upper_beam < 1 || g.upper_beam > AnnLimits::kMaxBeam) {
    corrupt("has beam widths out of range");
  }
  if (config.kind == AnnKind::Hnsw && (cum.size() < 2 || cum[1] != 2 * config.hnswM)) corrupt("has another M than configured");
  auto* storage = dynamic_cast<const faiss::IndexFlat*>(index.storage);
  if (storage == nullptr || storage->ntotal != index.ntotal || storage->d != index.d) corrupt("has an HNSW storage of another shape");
}

}  // namespace

void checkFaissIndex(const faiss::Index& index, const AnnConfig& config, const Catalog& catalog) {
  const faiss::MetricType metric = config.metric == Metric::L2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  if (index.d != config.dim || index.metric_type != metric) corrupt("has another dimension or metric than configured");
  const faiss::Index* inner = &index;
  if (auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(inner)) {
    if (pre->chain.size() != 1 || pre->chain[0]->d_in != config.dim || pre->index == nullptr ||
        pre->chain[0]->d_out != pre->index->d || pre->index->ntotal != pre->ntotal) {
      corrupt("has a rotation that does not fit its index");
    }
    inner = pre->index;
  }
  if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(inner)) {
    checkIvf(*ivf, catalog);
    return;
  }
  // Sequential kinds number vectors by slot, dead ones included.
  if (static_cast<size_t>(index.ntotal) != catalog.slots()) {
    corrupt("holds " + std::to_string(index.ntotal) + " vectors for " + std::to_string(catalog.slots()) + " slots");
  }
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(inner)) checkHnsw(*hnsw, config);
}

}  // namespace cangen
