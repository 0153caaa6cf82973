#include "ann/ad_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_set>

#include "ann/faiss_call.h"
#include "ann/faiss_writes.h"
#include "ann/hnsw_search.h"
#include "ann/ivf_flat_scan.h"
#include "common/error.h"
#include "common/limits.h"
#include "common/parallel.h"
#include "common/row_score.h"
#include "common/threads.h"
#include "common/vectors.h"
#include "flat/exact_search.h"
#include "flat/topk.h"

namespace cangen {

namespace {

// Below this many eligible ads a filtered search is answered exactly from the stored vectors:
// cheaper than an approximate search that would have to wade through ineligible ads.
size_t exactLimit(size_t live) { return std::max<size_t>(4096, live / 50); }

// An empty FAISS index for the config. HNSW is built directly (what the factory string "HNSW<M>"
// gives), sparing compaction the factory's regular expressions.
std::unique_ptr<faiss::Index> newFaissIndex(const AnnConfig& c) {
  const faiss::MetricType metric = c.metric == Metric::L2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  std::unique_ptr<faiss::Index> index;
  if (c.kind == AnnKind::Hnsw) {
    // Field by field: FAISS's IndexHNSWFlat(d, M, metric) leaks its storage when the graph's
    // allocation throws, as it takes ownership only after.
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>();
    hnsw->d = c.dim;
    hnsw->metric_type = metric;
    hnsw->hnsw = faiss::HNSW(c.hnswM);
    hnsw->hnsw.efConstruction = c.efConstruction;
    auto storage = std::make_unique<faiss::IndexFlat>(c.dim, metric);
    hnsw->storage = storage.release();
    hnsw->own_fields = true;
    index = std::move(hnsw);
  } else {
    index.reset(faiss::index_factory(c.dim, factoryString(c).c_str(), metric));
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) hnsw->hnsw.efConstruction = c.efConstruction;
  }
  return index;
}

faiss::IndexIVF* asIvf(faiss::Index* index) {
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) index = pre->index;
  return dynamic_cast<faiss::IndexIVF*>(index);
}

faiss::IndexHNSW* asHnsw(faiss::Index* index) { return dynamic_cast<faiss::IndexHNSW*>(index); }

}  // namespace

AdIndex::AdIndex(const AnnConfig& config, int threads, Unbuilt)
    : config_(config), threads_(std::max(threads, 0)), panels_(config.dim, config.metric, config.precision) {}

AdIndex::AdIndex(const AnnConfig& config, int threads) : AdIndex(config, threads, Unbuilt{}) {
  validateAnnConfig(config_);
  if (config_.kind == AnnKind::Flat) {
    trained_ = true;
    return;
  }
  faiss_ = callFaiss("index_factory", [&] { return newFaissIndex(config_); });
  if (auto* ivf = asIvf(faiss_.get())) ivf->nprobe = static_cast<size_t>(config_.nprobe);
  trained_ = faiss_->is_trained;
}

AdIndex::~AdIndex() = default;

PreparedRows AdIndex::prepare(const float* vectors, size_t n, const char* what) const {
  return prepareRows(vectors, n, config_.dim, config_.metric, what, std::string(what) == "vectors");
}

void AdIndex::train(const float* vectors, size_t n) {
  if (!faiss_) return;  // exact: nothing to learn
  const PreparedRows x = prepare(vectors, n, "sample");
  std::unique_lock lock(mutex_);
  if (auto* ivf = asIvf(faiss_.get()); ivf && n < ivf->nlist) {
    throw Error(ErrorCode::InvalidArgument, "Expected a training sample of at least nlist = " +
                                                std::to_string(ivf->nlist) + " vectors (ideally 39 x nlist) but received " +
                                                std::to_string(n));
  }
  ThreadLease lease(threads_);
  ScopedOmpThreads team(lease.threads());
  callFaiss("train", [&] { faiss_->train(static_cast<faiss::Index::idx_t>(n), x.data); });
  trained_ = faiss_->is_trained;
  coarse_.rebuild(faiss_.get());
  generation_++;
}

const float* AdIndex::rowVector(size_t slot) const {
  if (auto* hnsw = asHnsw(faiss_.get())) {
    auto* flat = dynamic_cast<const faiss::IndexFlat*>(hnsw->storage);
    return flat ? flat->get_xb() + slot * config_.dim : nullptr;
  }
  return rows_.size() > 0 ? rows_.data() + slot * config_.dim : nullptr;
}

bool AdIndex::storesRows() const {
  // HNSW's storage and IVF-Flat's lists hold full vectors already.
  return faiss_ && config_.storeVectors && !asHnsw(faiss_.get()) && config_.kind != AnnKind::IvfFlat;
}

void AdIndex::reserveVectors(size_t slots) {
  if (!faiss_) panels_.reserve(slots);
  if (storesRows()) rows_.reserveRoom(slots * config_.dim);
}

void AdIndex::commitVectors(const float* x, size_t n, size_t firstSlot) noexcept {
  if (!faiss_) {
    panels_.append(x, n);  // within the room reserveVectors made
    gpu_.markDirty(firstSlot);
  } else if (storesRows()) {
    rows_.resize((firstSlot + n) * config_.dim);
    std::copy(x, x + n * config_.dim, rows_.data() + firstSlot * config_.dim);
  }
}

void AdIndex::upsert(const int64_t* ids, const float* vectors, const AdAttributes* attributes, size_t n,
                     bool insertOnly) {
  if (n == 0) return;
  const PreparedRows x = prepare(vectors, n, "vectors");
  std::unordered_set<int64_t> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!batch.insert(ids[i]).second) {
      throw Error(ErrorCode::DuplicateId, "Expected each id once per upsert but id " + std::to_string(ids[i]) +
                                              " appears twice in this batch; nothing was written");
    }
  }
  std::unique_lock lock(mutex_);
  if (!trained_) throw Error(ErrorCode::InvalidArgument, "Expected a trained index: call train() with a sample first");
  for (size_t i = 0; insertOnly && i < n; ++i) {
    if (catalog_.find(ids[i])) {
      throw Error(ErrorCode::DuplicateId, "Expected ids not already in the index but id " + std::to_string(ids[i]) +
                                              " is already present; nothing was added");
    }
  }
  // All or nothing: everything that can fail happens before the commit, which cannot.
  ThreadLease lease(threads_);
  ScopedOmpThreads team(lease.threads());  // FAISS's add sizes its team from the OpenMP setting
  Catalog::PreparedUpsert prepared = catalog_.prepareUpsert(ids, n);
  try {
    filters_.reserve(prepared.first + n);
    reserveVectors(prepared.first + n);
    for (const auto& column : columns_.live()) column->stage(x.data, n, prepared.first);
    if (faiss_) addToFaiss(*faiss_, x.data, n, static_cast<int64_t>(prepared.first), &positions_);
  } catch (...) {
    catalog_.cancelUpsert(prepared);
    throw;
  }
  commitVectors(x.data, n, prepared.first);
  catalog_.commitUpsert(prepared, ids, attributes, n);
  filters_.update(catalog_, prepared.replaced.data(), prepared.replaced.size(), prepared.first);
  if (faiss_) dropFromLists(*faiss_, prepared.replaced, positions_);
  live_ = catalog_.live();
  generation_++;
}

size_t AdIndex::remove(const int64_t* ids, size_t n) {
  std::unique_lock lock(mutex_);
  std::vector<uint32_t> slots;
  slots.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (auto slot = catalog_.find(ids[i])) slots.push_back(*slot);
  }
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  // Commit: nothing below allocates.
  for (uint32_t slot : slots) catalog_.kill(slot);
  filters_.update(catalog_, slots.data(), slots.size(), catalog_.slots());
  if (faiss_) dropFromLists(*faiss_, slots, positions_);
  live_ = catalog_.live();
  generation_++;
  return slots.size();
}

size_t AdIndex::setAttributes(const int64_t* ids, const AdAttributes* attributes, size_t n) {
  std::unique_lock lock(mutex_);
  size_t changed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (auto slot = catalog_.find(ids[i])) {
      catalog_.setAttributes(*slot, attributes[i]);
      filters_.update(catalog_, &*slot, 1, catalog_.slots());
      ++changed;
    }
  }
  generation_++;
  return changed;
}

std::shared_ptr<const CompiledFilter> AdIndex::compile(const FilterSpec& spec) const {
  std::shared_lock lock(mutex_);
  filterCompiles_++;
  return filters_.add(spec, catalog_);
}

namespace {
std::vector<int64_t> idsOf(const Catalog& catalog, const Bitmap& bits) {
  std::vector<int64_t> ids;
  ids.reserve(bits.count());
  bits.forEach([&](size_t slot) { ids.push_back(catalog.id(slot)); });
  return ids;
}
}  // namespace

std::vector<int64_t> AdIndex::eligibleIds(const CompiledFilter& filter) const {
  if (!filters_.owns(filter)) throw Error(ErrorCode::InvalidArgument, "Expected a filter compiled by this index");
  std::shared_lock lock(mutex_);
  return idsOf(catalog_, filter.bits());
}

std::vector<int64_t> AdIndex::eligibleIds(const FilterSpec& spec) const {
  std::shared_lock lock(mutex_);
  filterCompiles_++;
  return idsOf(catalog_, compileFilter(catalog_, spec));
}

// Exact scores of the eligible slots from the row-major vectors, parallel over queries.
void AdIndex::exactOverSlots(const float* queries, int nq, int k, const Bitmap* eligible, int threads,
                             int64_t* outSlots, float* outScores, const CancelFlag& cancel) const {
  const int dim = config_.dim;
  const bool l2 = config_.metric == Metric::L2;
  const Bitmap& set = eligible ? *eligible : catalog_.liveSlots();
  parallelFor(threads, nq, 1, [&](int64_t q) {
    if (cancel.raised()) return;  // queries not started are skipped; the caller's check() reports it
    const float* query = queries + static_cast<size_t>(q) * dim;
    TopKCollector top(k);
    set.forEach([&](size_t slot) {
      const float* x = rowVector(slot);
      const float score = l2 ? rowScore<true>(query, x, dim) : rowScore<false>(query, x, dim);
      if (score > top.threshold()) top.push(score, static_cast<uint32_t>(slot));
    });
    std::vector<ScoredSlot> best = top.sorted();
    for (size_t i = 0; i < best.size(); ++i) {
      outSlots[static_cast<size_t>(q) * k + i] = best[i].slot;
      outScores[static_cast<size_t>(q) * k + i] = l2 ? -best[i].score : best[i].score;
    }
  });
}

// Re-scores kIn candidates per query exactly and keeps the best k.
void AdIndex::rerank(const float* queries, int nq, int kIn, int k, const int64_t* inSlots, int64_t* outSlots,
                     float* outScores) const {
  const int dim = config_.dim;
  const bool l2 = config_.metric == Metric::L2;
  for (int q = 0; q < nq; ++q) {
    const float* query = queries + static_cast<size_t>(q) * dim;
    TopKCollector top(k);
    for (int i = 0; i < kIn; ++i) {
      const int64_t slot = inSlots[static_cast<size_t>(q) * kIn + i];
      if (slot < 0) continue;
      const float* x = rowVector(static_cast<size_t>(slot));
      double s = 0;
      for (int j = 0; j < dim; ++j) s += l2 ? (query[j] - x[j]) * (query[j] - x[j]) : query[j] * x[j];
      top.push(static_cast<float>(l2 ? -s : s), static_cast<uint32_t>(slot));
    }
    std::vector<ScoredSlot> best = top.sorted();
    for (size_t i = 0; i < best.size(); ++i) {
      outSlots[static_cast<size_t>(q) * k + i] = best[i].slot;
      outScores[static_cast<size_t>(q) * k + i] = l2 ? -best[i].score : best[i].score;
    }
  }
}

SearchResult AdIndex::search(const float* queries, int nq, int k, const AnnSearchParams& params) const {
  if (nq < 1) throw Error(ErrorCode::InvalidArgument, "Expected at least one query but received " + std::to_string(nq));
  if (k < 1) throw Error(ErrorCode::InvalidArgument, "Expected k >= 1 but received " + std::to_string(k));
  const PreparedRows prepared = prepare(queries, nq, "queries");
  const float* q = prepared.data;
  SearchResult result = SearchResult::padded(nq, k);
  std::vector<int64_t> slots(static_cast<size_t>(nq) * k, -1);

  if (params.filter && !filters_.owns(*params.filter)) {
    throw Error(ErrorCode::InvalidArgument, "Expected a filter compiled by this index");
  }
  std::shared_lock lock(mutex_);
  // A compiled filter is current (every write updated it); a description is compiled here, under
  // the same lock as the search, and dropped after it.
  Bitmap oneOff;
  if (!params.filter && params.filterSpec) {
    filterCompiles_++;
    oneOff = compileFilter(catalog_, *params.filterSpec);
  }
  const Bitmap* filter = params.filter ? &params.filter->bits() : params.filterSpec ? &oneOff : nullptr;
  const bool deleted = catalog_.live() != catalog_.slots();
  const Bitmap* eligible = filter ? filter : (deleted ? &catalog_.liveSlots() : nullptr);
  const size_t eligibleCount = filter ? filter->count() : catalog_.live();
  // Lease only what this search can keep busy: the exact scan's chunks, or one thread per query.
  const int wanted = requestedThreads(params.threads, threads_);
  const bool exactScan = !faiss_ && params.device != Device::Gpu;
  const bool perQuery = faiss_ && (asHnsw(faiss_.get()) || eligibleCount <= exactLimit(catalog_.live()));
  ThreadLease lease(exactScan ? exactSearchTeams(panels_.view(), wanted) : perQuery ? std::min(wanted, nq) : wanted);
  const int threads = lease.threads();
  if (params.device == Device::Gpu && faiss_) {
    throw Error(ErrorCode::NoDevice, "Only the 'flat' kind searches on the GPU in this build; use device 'cpu'");
  }
  if (eligibleCount > 0) {
    if (!faiss_) {
      std::vector<float> scaled(q, q + static_cast<size_t>(nq) * config_.dim);
      if (config_.metric == Metric::L2) scaleQueriesForL2(scaled.data(), scaled.size());
      const uint64_t* bits = eligible ? eligible->words.data() : nullptr;
      if (params.device == Device::Gpu) {
        gpu_.search(panels_.view(), scaled.data(), nq, k, bits, params.gpuDevice, slots.data(), result.scores.data());
      } else if (const ReducedPanels* reduced = panels_.reduced()) {
        uint64_t reranked = 0;
        exactSearchReduced(panels_.view(), *reduced, scaled.data(), nq, k, threads, bits, slots.data(), result.scores.data(),
                           params.cancel, &reranked);
        reducedQueries_ += nq;
        reducedReranked_ += reranked;
      } else {
        exactSearchPanels(panels_.view(), scaled.data(), nq, k, threads, bits, slots.data(), result.scores.data(), params.cancel);
      }
      if (config_.metric == Metric::L2) l2ScoresToDistances(q, nq, config_.dim, k, result.scores.data());
    } else if (eligibleCount <= exactLimit(catalog_.live()) && rowVector(0) != nullptr) {
      exactOverSlots(q, nq, k, eligible, threads, slots.data(), result.scores.data(), params.cancel);
      params.cancel.check();
    } else {
      // IVF without stored vectors answers selective filters by visiting every list (exact for
      // IVF-Flat), skipping ineligible ads before any distance is computed.
      const bool visitAll = eligibleCount <= exactLimit(catalog_.live());
      // Approximate search; a filter keeping a fraction f of the ads widens the search by 1/f so
      // that about as many eligible ads are visited as without it.
      const double fraction = static_cast<double>(eligibleCount) / std::max<size_t>(1, catalog_.live());
      const int rerankFactor = params.rerank >= 0 ? params.rerank : config_.rerank;
      const bool reranking = rerankFactor > 1 && rowVector(0) != nullptr;
      // Candidates of the first stage: 64-bit product, then the same budget as the results.
      const int64_t candidatesPerQuery = reranking ? static_cast<int64_t>(k) * rerankFactor : k;
      checkResultBudget(nq, candidatesPerQuery, sizeof(float) + sizeof(faiss::Index::idx_t), "re-ranking candidates");
      if (candidatesPerQuery > std::numeric_limits<int>::max()) {
        throw Error(ErrorCode::ResourceLimit, "Expected k x rerank within 2^31 - 1 but it is " + std::to_string(candidatesPerQuery));
      }
      const int kSearch = static_cast<int>(candidatesPerQuery);
      std::unique_ptr<faiss::IDSelectorBitmap> selector;
      if (eligible) {
        selector = std::make_unique<faiss::IDSelectorBitmap>(eligible->words.size() * 8,
                                                             reinterpret_cast<const uint8_t*>(eligible->words.data()));
      }
      faiss::SearchParametersIVF ivfParams;
      faiss::SearchParametersHNSW hnswParams;
      faiss::SearchParameters plainParams;
      faiss::SearchParameters* chosen = &plainParams;
      if (auto* ivf = asIvf(faiss_.get())) {
        const double nprobe = visitAll ? ivf->nlist : (params.nprobe > 0 ? params.nprobe : config_.nprobe) / fraction;
        ivfParams.nprobe = static_cast<size_t>(std::min<double>(ivf->nlist, std::ceil(nprobe)));
        chosen = &ivfParams;
      } else if (asHnsw(faiss_.get())) {
        const double ef = std::max(params.efSearch > 0 ? params.efSearch : config_.efSearch, kSearch) / fraction;
        hnswParams.efSearch = static_cast<int>(std::min<double>(std::max<double>(ef, kSearch), 4096));
        chosen = &hnswParams;
      }
      chosen->sel = selector.get();
      std::vector<float> distances(static_cast<size_t>(nq) * kSearch);
      std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(nq) * kSearch);
      ScopedOmpThreads team(threads);
      callFaiss("search", [&] {
        if (auto* hnsw = asHnsw(faiss_.get())) {
          searchHnsw(*hnsw, q, nq, kSearch, hnswParams.efSearch, selector.get(), threads, distances.data(),
                     labels.data(), params.cancel);
        } else {
          // With a cancel flag, queries go to FAISS in batches (a FAISS call cannot be stopped inside).
          const int batch = params.cancel.word ? std::max(1, 4 * threads) : nq;
          const faiss::IndexIVF* ivf = coarse_.ivf() == faiss_.get() ? coarse_.ivf() : nullptr;
          std::vector<int64_t> lists(ivf ? static_cast<size_t>(std::min(batch, nq)) * ivfParams.nprobe : 0);
          std::vector<float> listDistances(lists.size());
          for (int first = 0; first < nq; first += batch) {
            params.cancel.check();
            const int n = std::min(batch, nq - first);
            const size_t at = static_cast<size_t>(first);
            if (ivf) {
              const int nprobe = static_cast<int>(ivfParams.nprobe);
              coarse_.assign(q + at * config_.dim, n, nprobe, threads, lists.data(), listDistances.data());
              if (scansIvfFlatLists(*ivf)) {
                searchIvfFlatLists(*ivf, q + at * config_.dim, n, lists.data(), nprobe, kSearch,
                                   eligible ? eligible->words.data() : nullptr, eligible ? eligible->words.size() : 0,
                                   threads, distances.data() + at * kSearch, labels.data() + at * kSearch, params.cancel);
              } else {
                ivf->search_preassigned(n, q + at * config_.dim, kSearch, lists.data(), listDistances.data(),
                                        distances.data() + at * kSearch, labels.data() + at * kSearch, false, &ivfParams);
              }
            } else {
              faiss_->search(n, q + at * config_.dim, kSearch, distances.data() + at * kSearch,
                             labels.data() + at * kSearch, selector || chosen != &plainParams ? chosen : nullptr);
            }
          }
        }
      });
      if (reranking) {
        rerank(q, nq, kSearch, k, labels.data(), slots.data(), result.scores.data());
      } else {
        std::copy(labels.begin(), labels.end(), slots.begin());
        std::copy(distances.begin(), distances.end(), result.scores.begin());
      }
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] >= 0 && static_cast<size_t>(slots[i]) < catalog_.slots()) {
      result.ids[i] = catalog_.id(static_cast<size_t>(slots[i]));
      result.counts[i / k]++;
    } else {
      result.ids[i] = -1;
      result.scores[i] = std::nanf("");
    }
  }
  return result;
}

// Compaction builds the new structure in rounds, holding no lock while it computes: each round
// takes the slots that appeared since the last one (all slots, the first time) and are live,
// copies their vectors out under short shared locks, and adds them to the new structure. The
// final round runs under the exclusive lock, so that what the writes did meanwhile is applied
// before the swap: slots appended since are added, slots killed since become tombstones of the
// new numbering, and the catalog (attributes) is rebuilt from the current one.
struct AdIndex::Compaction {
  Compaction(const AnnConfig& config) : panels(config.dim, config.metric, config.precision) {}
  std::vector<uint32_t> included;         // ascending: new slot i is old slot included[i]
  size_t seen = 0;                        // old slots below this have been taken into account
  PanelStore panels;                      // the flat kind's vectors
  AlignedBuffer<float> rows;              // kinds that keep rows_
  std::unique_ptr<faiss::Index> rebuilt;  // kinds other than IVF, rebuilt from their vectors
};

namespace {

// Slots copied per shared lock while a compaction reads vectors: a write waits for one chunk.
constexpr size_t kCompactionChunk = 16384;
// Catch-up rounds run without the exclusive lock while more slots than this appeared meanwhile.
constexpr size_t kCatchUpSlots = 1024;
constexpr int kMaxCatchUpRounds = 8;

}  // namespace

bool AdIndex::keepsVectors() const { return !faiss_ || storesRows() || asHnsw(faiss_.get()) != nullptr; }

void AdIndex::attach(const std::shared_ptr<SlotColumn>& column) {
  std::unique_lock lock(mutex_);
  if (!keepsVectors()) {
    throw Error(ErrorCode::InvalidArgument, "Expected an index that keeps its vectors to attach to (kind flat or hnsw, or ivf-pq, "
                                            "ivf-sq8 or faiss with storeVectors: true): the attached data is derived from them");
  }
  // Dead slots too: the column's numbering is the catalog's.
  std::vector<float> x(std::min(catalog_.slots(), kCompactionChunk) * config_.dim);
  for (size_t first = 0; first < catalog_.slots(); first += kCompactionChunk) {
    const size_t n = std::min(kCompactionChunk, catalog_.slots() - first);
    callFaiss("attach", [&] {
      for (size_t i = 0; i < n; ++i) readVector(first + i, x.data() + i * config_.dim);
    });
    column->stage(x.data(), n, first);
  }
  columns_.add(column);
}

void AdIndex::readSlots(const CompiledFilter* filter,
                        const std::function<void(const Catalog& catalog, const Bitmap& eligible)>& read) const {
  if (filter && !filters_.owns(*filter)) throw Error(ErrorCode::InvalidArgument, "Expected a filter compiled by this index");
  std::shared_lock lock(mutex_);
  read(catalog_, filter ? filter->bits() : catalog_.liveSlots());
}

bool AdIndex::compactionCopiesVectors() const { return !faiss_ || storesRows() || !asIvf(faiss_.get()); }

void AdIndex::readVector(size_t slot, float* out) const {
  if (!faiss_) {
    panels_.read(slot, out);
  } else if (const float* x = rowVector(slot)) {
    std::copy(x, x + config_.dim, out);
  } else {
    faiss_->reconstruct(static_cast<faiss::Index::idx_t>(slot), out);
  }
}

std::vector<uint32_t> AdIndex::liveSlotsFrom(size_t first) const {
  std::vector<uint32_t> slots;
  for (size_t s = first; s < catalog_.slots(); ++s) {
    if (catalog_.isLive(s)) slots.push_back(static_cast<uint32_t>(s));
  }
  return slots;
}

void AdIndex::extendCompaction(Compaction& c, const uint32_t* slots, const float* x, size_t n, int threads) const {
  if (!faiss_) c.panels.append(x, n);
  if (storesRows()) {
    const size_t at = c.rows.size();
    c.rows.resize(at + n * config_.dim);
    std::copy(x, x + n * config_.dim, c.rows.data() + at);
  }
  if (c.rebuilt) {
    ThreadLease lease(threads);
    ScopedOmpThreads team(lease.threads());
    addToFaiss(*c.rebuilt, x, n, static_cast<int64_t>(c.included.size()));
  }
  c.included.insert(c.included.end(), slots, slots + n);
}

// Adds `slots` (live old slots, ascending, all >= c.seen) to the compaction. With `locked` the
// caller holds the exclusive lock; otherwise their vectors are copied under shared locks.
void AdIndex::catchUp(Compaction& c, const std::vector<uint32_t>& slots, bool locked, int threads) const {
  if (!compactionCopiesVectors()) {
    c.included.insert(c.included.end(), slots.begin(), slots.end());
    return;
  }
  std::vector<float> x(std::min(slots.size(), kCompactionChunk) * config_.dim);
  for (size_t first = 0; first < slots.size(); first += kCompactionChunk) {
    const size_t n = std::min(kCompactionChunk, slots.size() - first);
    {
      // Slots below the catalog's end never change until a compaction (ours) renumbers them, so
      // the copy may be split over several locks; the lock only keeps the storage from moving.
      std::shared_lock lock(mutex_, std::defer_lock);
      if (!locked) lock.lock();
      callFaiss("compaction", [&] {
        for (size_t i = 0; i < n; ++i) readVector(slots[first + i], x.data() + i * config_.dim);
      });
    }
    callFaiss("compaction", [&] { extendCompaction(c, slots.data() + first, x.data(), n, threads); });
  }
}

void AdIndex::compact(const std::function<void()>& betweenRounds) {
  std::lock_guard<std::mutex> single(compaction_);  // one compaction at a time; a second waits
  Compaction c(config_);
  {
    std::shared_lock lock(mutex_);
    if (catalog_.live() == catalog_.slots()) return;
    if (asIvf(faiss_.get()) && ListPositions::trackedLists(*faiss_) == nullptr) {
      throw Error(ErrorCode::Internal, "compaction needs FAISS array inverted lists");
    }
    if (faiss_ && !asIvf(faiss_.get())) {
      c.rebuilt = callFaiss("compaction", [&] { return newFaissIndex(config_); });
      if (!c.rebuilt->is_trained) throw Error(ErrorCode::InvalidArgument, "compaction is not supported for this FAISS factory string");
    }
  }
  // The build leaves one thread of the budget to searches (a lease waits while none is free).
  const int buildThreads = std::max(1, std::min(requestedThreads(0, threads_), threadBudget() - 1));
  for (int round = 0;; ++round) {
    std::vector<uint32_t> fresh;
    {
      std::shared_lock lock(mutex_);
      fresh = liveSlotsFrom(c.seen);
      c.seen = catalog_.slots();
    }
    catchUp(c, fresh, false, buildThreads);
    if (betweenRounds) betweenRounds();
    std::shared_lock lock(mutex_);
    if (catalog_.slots() - c.seen <= kCatchUpSlots || round + 1 >= kMaxCatchUpRounds) break;
  }

  std::unique_ptr<faiss::Index> replaced;  // freed after the lock is released
  std::unique_lock lock(mutex_);
  // Prepare: the writes made since the last round, and every allocation, with the index untouched.
  catchUp(c, liveSlotsFrom(c.seen), true, requestedThreads(0, threads_));
  Catalog compacted = catalog_.kept(c.included);  // current attributes and liveness
  std::vector<std::shared_ptr<SlotColumn>> columns = columns_.live();
  for (const auto& column : columns) column->prepareKeep(c.included);
  const bool ivf = asIvf(faiss_.get()) != nullptr;
  std::vector<int64_t> renumber;
  if (ivf) {
    renumber.assign(catalog_.slots(), -1);
    for (size_t i = 0; i < c.included.size(); ++i) renumber[c.included[i]] = static_cast<int64_t>(i);
  }
  // Commit: nothing below allocates.
  if (!faiss_) {
    panels_.swap(c.panels);
    gpu_.markDirty(0);
  }
  if (ivf) renumberLists(*faiss_, renumber, c.included, positions_);
  if (c.rebuilt) {
    replaced = std::move(faiss_);
    faiss_ = std::move(c.rebuilt);
  }
  if (storesRows()) rows_.swap(c.rows);
  catalog_.swap(compacted);
  filters_.compact(c.included);  // every compiled filter renumbered like the catalog
  for (const auto& column : columns) column->commitKeep();
  live_ = catalog_.live();
  generation_++;
}

AnnStats AdIndex::stats() const {
  std::shared_lock lock(mutex_);
  AnnStats s;
  s.live = catalog_.live();
  s.slots = catalog_.slots();
  s.deleted = s.slots - s.live;
  s.trained = trained_;
  s.generation = generation_;
  s.filters = filters_.live();
  s.filterCompiles = filterCompiles_;
  s.filterSlotUpdates = filters_.slotUpdates();
  s.reducedQueries = reducedQueries_;
  s.reducedReranked = reducedReranked_;
  s.catalogBytes = catalog_.bytes();
  s.vectorBytes = panels_.bytes() + rows_.size() * sizeof(float);
  if (auto* ivf = asIvf(faiss_.get())) {
    size_t entries = 0;
    for (size_t l = 0; l < ivf->nlist; ++l) entries += ivf->invlists->list_size(l);
    s.indexBytes = entries * (ivf->code_size + sizeof(faiss::Index::idx_t)) + ivf->nlist * ivf->d * sizeof(float);
    if (faiss_.get() != ivf) s.indexBytes += static_cast<size_t>(ivf->d) * ivf->d * sizeof(float);  // OPQ rotation
    s.indexBytes += positions_.bytes();
  } else if (auto* hnsw = asHnsw(faiss_.get())) {
    s.vectorBytes += static_cast<size_t>(hnsw->ntotal) * config_.dim * sizeof(float);
    s.indexBytes = hnsw->hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t) +
                   hnsw->hnsw.offsets.size() * sizeof(size_t) + hnsw->hnsw.levels.size() * sizeof(int);
  } else if (faiss_) {
    s.indexBytes = static_cast<size_t>(faiss_->ntotal) * faiss_->sa_code_size();
  }
  s.bytes = s.catalogBytes + s.vectorBytes + s.indexBytes;
  return s;
}

}  // namespace cangen
