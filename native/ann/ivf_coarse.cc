#include "ann/ivf_coarse.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>

#include <vector>

#include "flat/exact_search.h"

namespace cangen {

void IvfCoarse::rebuild(const faiss::Index* index) {
  ivf_ = nullptr;
  centroids_.reset();
  const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index);
  // Fast-scan IVF indexes have their own search (search_preassigned is not theirs to call).
  if (!ivf || !ivf->is_trained || dynamic_cast<const faiss::IndexIVFFastScan*>(ivf)) return;
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer);
  if (!flat || flat->ntotal != static_cast<faiss::Index::idx_t>(ivf->nlist)) return;
  const bool l2 = flat->metric_type == faiss::METRIC_L2;
  if (!l2 && flat->metric_type != faiss::METRIC_INNER_PRODUCT) return;
  centroids_.emplace(static_cast<int>(flat->d), l2 ? Metric::L2 : Metric::InnerProduct, Precision::Int8);
  centroids_->append(flat->get_xb(), ivf->nlist);
  ivf_ = ivf;
}

void IvfCoarse::assign(const float* queries, int nq, int nprobe, int threads, int64_t* lists, float* distances) const {
  const PanelView view = centroids_->view();
  // The int8 scan re-ranks in fp32 what it cannot rule out: when a filter has widened nprobe to a
  // large share of the lists, that is most of them, so the fp32 scan alone does less work.
  const bool reduced = static_cast<size_t>(nprobe) * 4 <= view.count;
  const auto scan = [&](const float* q) {
    if (reduced) {
      exactSearchReduced(view, *centroids_->reduced(), q, nq, nprobe, threads, nullptr, lists, distances);
    } else {
      exactSearchPanels(view, q, nq, nprobe, threads, nullptr, lists, distances);
    }
  };
  if (!view.bias) {
    scan(queries);
    return;
  }
  std::vector<float> scaled(queries, queries + static_cast<size_t>(nq) * view.dim);
  scaleQueriesForL2(scaled.data(), scaled.size());
  scan(scaled.data());
  l2ScoresToDistances(queries, nq, view.dim, nprobe, distances);
}

}  // namespace cangen
