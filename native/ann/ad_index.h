#pragma once
// The ads corpus index: every kind (our exact kernels, FAISS IVF-Flat, IVF-PQ with optional OPQ
// and exact re-ranking, IVF-SQ8, HNSW, or a FAISS factory string) behind one interface, with ids,
// eligibility attributes, upsert and remove without a rebuild, filtered search, compaction and
// atomic persistence. Thread-safe: searches share a lock, writes take it alone; the lock is fair
// (common/fair_shared_mutex.h), so a stream of searches cannot keep a write waiting.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "ann/ann_config.h"
#include "ann/bitmap.h"
#include "ann/catalog.h"
#include "ann/filter.h"
#include "ann/filter_registry.h"
#include "ann/ivf_coarse.h"
#include "ann/list_positions.h"
#include "ann/slot_column.h"
#include "common/aligned_buffer.h"
#include "common/cancel.h"
#include "common/fair_shared_mutex.h"
#include "common/metric.h"
#include "flat/gpu_mirror.h"
#include "flat/panel_store.h"
#include "common/search_result.h"
#include "common/vectors.h"

namespace faiss {
struct Index;
}

namespace cangen {

struct AnnSearchParams {
  int nprobe = 0;    // 0: the index's default
  int efSearch = 0;  // 0: the index's default
  int rerank = -1;   // -1: the index's default
  int threads = 0;
  Device device = Device::Cpu;  // the GPU serves the flat kind
  int gpuDevice = 0;
  // Only eligible ads: a filter compile() made on this index (kept current by every write), or a
  // filter description compiled inside this search and not kept (a one-off request), or neither.
  const CompiledFilter* filter = nullptr;
  const FilterSpec* filterSpec = nullptr;
  // Raised by the caller to stop the search: polled between chunks of ads (flat), between queries
  // (exact over slots, HNSW) and between batches of queries (other FAISS kinds).
  CancelFlag cancel;
};

struct AnnStats {
  size_t live = 0;
  size_t deleted = 0;  // tombstoned slots awaiting compaction
  size_t slots = 0;
  size_t bytes = 0;    // resident bytes of vectors, codes, graph and catalog
  size_t vectorBytes = 0;
  size_t indexBytes = 0;
  size_t catalogBytes = 0;
  bool trained = false;
  uint64_t generation = 0;
  size_t filters = 0;             // compiled filters registered and not yet dropped
  uint64_t filterCompiles = 0;    // filters compiled over the whole corpus (compile(), one-off specs)
  uint64_t filterSlotUpdates = 0; // filter bits re-tested by writes for the slots they touched
  uint64_t reducedQueries = 0;     // queries answered by a bf16 or int8 scan (flat kind)
  uint64_t reducedReranked = 0;    // fp32 re-rankings those queries needed (k each at least)
};

class AdIndex {
 public:
  AdIndex(const AnnConfig& config, int threads);
  ~AdIndex();

  const AnnConfig& config() const { return config_; }
  bool isTrained() const { return trained_.load(); }
  // Increases with every write.
  uint64_t generation() const { return generation_.load(); }
  size_t size() const { return live_.load(); }

  void train(const float* vectors, size_t n);
  // New ids are added; existing ids get the new embedding and attributes. All or nothing.
  // insertOnly: an id already present rejects the whole batch (DuplicateId) instead.
  void upsert(const int64_t* ids, const float* vectors, const AdAttributes* attributes, size_t n,
              bool insertOnly = false);
  // Returns how many of the ids were present.
  size_t remove(const int64_t* ids, size_t n);
  // Changes the attributes of present ads, keeping their embeddings; returns how many were present.
  size_t setAttributes(const int64_t* ids, const AdAttributes* attributes, size_t n);
  SearchResult search(const float* queries, int nq, int k, const AnnSearchParams& params) const;
  // Compiles a filter against the current corpus and registers it: from then on every write
  // keeps it current (filter_registry.h) until the last reference to it is dropped.
  std::shared_ptr<const CompiledFilter> compile(const FilterSpec& spec) const;
  // Ids of the live ads a filter admits, ascending by slot.
  std::vector<int64_t> eligibleIds(const CompiledFilter& filter) const;
  std::vector<int64_t> eligibleIds(const FilterSpec& spec) const;
  // Drops tombstones and renumbers slots (HNSW and FAISS's Flat: rebuilt from the stored vectors).
  // The new structure is built without the exclusive lock, so searches and writes go on meanwhile;
  // the writes made during the build are applied to it under the lock just before it is swapped
  // in (ads killed during the build stay as tombstones of the new numbering). One compaction at a
  // time: a second call waits for the first. All or nothing, like every write.
  // `betweenRounds` (for tests) runs on the compacting thread, holding no lock, after each round
  // of the build.
  void compact(const std::function<void()>& betweenRounds = {});
  AnnStats stats() const;

  // Attaches a column derived from the ads' vectors (slot_column.h): it is staged now for every
  // slot, then kept in step by every upsert and compaction until its owner drops it. Needs the
  // stored vectors: kind flat, HNSW, or IVF-PQ, IVF-SQ8 or a factory string with storeVectors.
  void attach(const std::shared_ptr<SlotColumn>& column);
  // Runs `read` under the shared lock with the catalog and the eligible slots: the filter's bits
  // (a filter compiled by this index), or the live slots.
  void readSlots(const CompiledFilter* filter,
                 const std::function<void(const Catalog& catalog, const Bitmap& eligible)>& read) const;

  void save(const std::string& path) const;
  static std::unique_ptr<AdIndex> load(const std::string& path, int threads);
  // load() from the bytes of a file already read (the fuzz target's entry point).
  static std::unique_ptr<AdIndex> fromBytes(const uint8_t* data, size_t size, int threads);

 private:
  struct Backend;
  // An index with no FAISS structure yet, for load() to fill from a checked file.
  struct Unbuilt {};
  AdIndex(const AnnConfig& config, int threads, Unbuilt);
  PreparedRows prepare(const float* vectors, size_t n, const char* what) const;
  bool storesRows() const;
  bool keepsVectors() const;
  // An upsert's vectors in two steps: room for `slots` slots (may throw), then the copy (cannot).
  void reserveVectors(size_t slots);
  void commitVectors(const float* prepared, size_t n, size_t firstSlot) noexcept;
  void exactOverSlots(const float* queries, int nq, int k, const Bitmap* eligible, int threads,
                      int64_t* outSlots, float* outScores, const CancelFlag& cancel = {}) const;
  void rerank(const float* queries, int nq, int kIn, int k, const int64_t* inSlots, int64_t* outSlots,
              float* outScores) const;
  const float* rowVector(size_t slot) const;
  struct Compaction;
  bool compactionCopiesVectors() const;
  void readVector(size_t slot, float* out) const;
  std::vector<uint32_t> liveSlotsFrom(size_t first) const;
  void catchUp(Compaction& c, const std::vector<uint32_t>& slots, bool locked, int threads) const;
  void extendCompaction(Compaction& c, const uint32_t* slots, const float* x, size_t n, int threads) const;
  void serialize(std::vector<uint8_t>& out) const;
  void deserialize(const uint8_t* data, size_t size);

  AnnConfig config_;
  const int threads_;
  mutable FairSharedMutex mutex_;
  std::mutex compaction_;  // held by the one compaction running; taken before mutex_
  Catalog catalog_;
  mutable FilterRegistry filters_;  // compile() registers under the shared lock
  SlotColumns columns_;
  PanelStore panels_;                // Flat kind
  mutable GpuMirror gpu_;            // Flat kind: device copy of panels_
  AlignedBuffer<float> rows_;        // other kinds with storeVectors (not HNSW: its storage holds them)
  std::unique_ptr<faiss::Index> faiss_;
  ListPositions positions_;          // IVF kinds: each slot's place in the inverted lists
  IvfCoarse coarse_;                 // IVF kinds: the coarse step on the exact kernel
  std::atomic<bool> trained_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> live_{0};
  mutable std::atomic<uint64_t> filterCompiles_{0};
  mutable std::atomic<uint64_t> reducedQueries_{0};
  mutable std::atomic<uint64_t> reducedReranked_{0};
};

}  // namespace cangen
