// AdIndex::compact builds its new structure outside the exclusive lock and applies the writes made
// meanwhile before it swaps it in. For every kind: writes made during the build (new ads,
// replacements, removals, attribute changes, from the compaction's own hook and from a racing
// thread) end in exactly the ads and attributes a reference model holds, checked by eligible ids
// per category and by exact search against a float64 brute force; searches made during the
// compaction see only live ads; and a compaction with nothing written meanwhile leaves no tombstone.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ann/ad_index.h"
#include "test_data.h"

namespace {

using cangen::AdAttributes;
using cangen::AdIndex;
using cangen::AnnConfig;
using cangen::AnnKind;
using cangen::Metric;

constexpr int kDim = 16;
constexpr uint32_t kCategories = 4;
constexpr int kQueries = 4;
constexpr int kTop = 10;

using Ad = cangen::testdata::ReferenceAd;

struct KindCase {
  const char* name;
  AnnKind kind;
  Metric metric;
  const char* factory;
};

const KindCase kKinds[] = {
    {"flat", AnnKind::Flat, Metric::L2, ""},
    {"ivf_flat", AnnKind::IvfFlat, Metric::InnerProduct, ""},
    {"ivf_pq", AnnKind::IvfPq, Metric::L2, ""},
    {"ivf_sq8", AnnKind::IvfSq8, Metric::InnerProduct, ""},
    {"hnsw", AnnKind::Hnsw, Metric::L2, ""},
    {"faiss_opq_ivf_pq", AnnKind::Factory, Metric::L2, "OPQ4,IVF8,PQ4np"},
    {"faiss_hnsw", AnnKind::Factory, Metric::InnerProduct, "HNSW8"},
    {"faiss_flat", AnnKind::Factory, Metric::L2, "Flat"},
};

void PrintTo(const KindCase& kind, std::ostream* out) { *out << kind.name; }

// The index and the corpus it should hold, written together.
class Model {
 public:
  Model(const KindCase& kind, uint32_t seed) : kind_(kind), rng_(seed) {
    AnnConfig config = cangen::testdata::smallConfig(kind.kind, kDim, kind.metric, kind.factory);
    config.nprobe = 8;
    index_ = std::make_unique<AdIndex>(config, 1);
    if (!index_->isTrained()) {
      const std::vector<float> sample = gaussian(256 * 8);
      index_->train(sample.data(), 256 * 8);
    }
    // Compiled before any write: every write and every compaction must keep it current.
    cangen::FilterSpec odd;
    odd.categories = std::vector<uint32_t>{1, 3};
    longLived_ = index_->compile(odd);
  }

  AdIndex& index() { return *index_; }
  const std::map<int64_t, Ad>& corpus() const { return corpus_; }

  void upsertNew(size_t n) {
    std::vector<int64_t> ids(n);
    for (int64_t& id : ids) id = nextId_++;
    upsert(ids);
  }
  void replace(size_t n) { upsert(someIds(n)); }
  void remove(size_t n) {
    const std::vector<int64_t> ids = someIds(n);
    ASSERT_EQ(index_->remove(ids.data(), ids.size()), ids.size());
    for (int64_t id : ids) corpus_.erase(id);
    std::lock_guard<std::mutex> lock(removedMutex_);
    removed_.insert(ids.begin(), ids.end());
  }
  void setAttributes(size_t n) {
    const std::vector<int64_t> ids = someIds(n);
    std::vector<AdAttributes> attributes;
    for (int64_t id : ids) attributes.push_back(randomAttributes(id));
    ASSERT_EQ(index_->setAttributes(ids.data(), attributes.data(), ids.size()), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) corpus_[ids[i]].attributes = attributes[i];
  }
  // A batch of every kind of write, `scale` of each.
  void writeBatch(size_t scale) {
    upsertNew(scale);
    replace(scale / 2 + 1);
    remove(scale / 2 + 1);
    setAttributes(scale / 2 + 1);
  }

  // Ids removed for good (ids are never reused), for a racing searcher.
  std::set<int64_t> removedSoFar() {
    std::lock_guard<std::mutex> lock(removedMutex_);
    return removed_;
  }

  // Everything checkable against the corpus: sizes, eligible ids per category, exact (filtered)
  // search against a float64 brute force, and approximate search returning only live ads.
  void expectMatches(const std::string& where) {
    SCOPED_TRACE(where);
    ASSERT_EQ(index_->size(), corpus_.size());
    for (uint32_t c = 0; c < kCategories; ++c) {
      cangen::FilterSpec spec;
      spec.categories = std::vector<uint32_t>{c};
      std::vector<int64_t> got = index_->eligibleIds(spec), expected;
      std::sort(got.begin(), got.end());
      for (const auto& [id, ad] : corpus_) {
        if (ad.attributes.category == c) expected.push_back(id);
      }
      EXPECT_EQ(got, expected) << "category " << c;
    }
    std::vector<int64_t> kept = index_->eligibleIds(*longLived_), oddAds;
    std::sort(kept.begin(), kept.end());
    for (const auto& [id, ad] : corpus_) {
      if (ad.attributes.category % 2 == 1) oddAds.push_back(id);
    }
    EXPECT_EQ(kept, oddAds) << "a filter compiled before the writes and compactions";
    const std::vector<float> q = queries();
    cangen::FilterSpec every;
    every.categories = std::vector<uint32_t>{0, 1, 2, 3};
    const auto filter = index_->compile(every);
    cangen::AnnSearchParams params;
    params.filter = filter.get();
    const cangen::SearchResult exact = index_->search(q.data(), kQueries, kTop, params);
    for (int i = 0; i < kQueries; ++i) {
      const std::vector<int64_t> expected = bruteForce(q.data() + i * kDim);
      const std::vector<int64_t> got(exact.ids.begin() + i * kTop, exact.ids.begin() + i * kTop + expected.size());
      EXPECT_EQ(got, expected) << "query " << i;
    }
    const cangen::SearchResult approximate = index_->search(q.data(), kQueries, kTop, {});
    for (int64_t id : approximate.ids) EXPECT_TRUE(id == -1 || corpus_.count(id)) << "ad " << id << " is not live";
  }

  std::vector<float> queries() {
    std::mt19937 rng(99);
    std::normal_distribution<float> normal;
    std::vector<float> q(kQueries * kDim);
    for (float& x : q) x = normal(rng);
    return q;
  }

 private:
  std::vector<float> gaussian(size_t n) {
    std::normal_distribution<float> normal;
    std::vector<float> v(n * kDim);
    for (float& x : v) x = normal(rng_);
    return v;
  }

  AdAttributes randomAttributes(int64_t id) {
    AdAttributes a;
    a.category = std::uniform_int_distribution<uint32_t>(0, kCategories - 1)(rng_);
    a.advertiser = static_cast<uint32_t>(id % 5);
    return a;
  }

  std::vector<int64_t> someIds(size_t n) {
    std::vector<int64_t> ids;
    for (const auto& [id, ad] : corpus_) ids.push_back(id);
    std::shuffle(ids.begin(), ids.end(), rng_);
    ids.resize(std::min(n, ids.size()));
    return ids;
  }

  void upsert(const std::vector<int64_t>& ids) {
    const std::vector<float> x = gaussian(ids.size());
    std::vector<AdAttributes> attributes;
    for (int64_t id : ids) attributes.push_back(randomAttributes(id));
    index_->upsert(ids.data(), x.data(), attributes.data(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      corpus_[ids[i]] = {std::vector<float>(x.begin() + i * kDim, x.begin() + (i + 1) * kDim), attributes[i]};
    }
  }

  // Top-k ids of the corpus in float64, best first.
  std::vector<int64_t> bruteForce(const float* query) const {
    std::vector<std::pair<double, int64_t>> scored;
    for (const auto& [id, ad] : corpus_) {
      double s = 0;
      for (int j = 0; j < kDim; ++j) {
        s += kind_.metric == Metric::L2 ? (double(query[j]) - ad.vector[j]) * (double(query[j]) - ad.vector[j])
                                        : -double(query[j]) * ad.vector[j];
      }
      scored.push_back({s, id});
    }
    std::sort(scored.begin(), scored.end());
    std::vector<int64_t> ids;
    for (int r = 0; r < kTop && r < static_cast<int>(scored.size()); ++r) ids.push_back(scored[r].second);
    return ids;
  }

  KindCase kind_;
  std::mt19937 rng_;
  std::unique_ptr<AdIndex> index_;
  std::shared_ptr<const cangen::CompiledFilter> longLived_;
  std::map<int64_t, Ad> corpus_;
  int64_t nextId_ = 1;
  std::mutex removedMutex_;
  std::set<int64_t> removed_;
};

class Compaction : public ::testing::TestWithParam<KindCase> {};

// Writes from the compaction's hook, which runs between its rounds with no lock held: the first
// batch (more new slots than a catch-up without the lock allows) makes a second round, whose
// writes the final step under the exclusive lock applies.
TEST_P(Compaction, AppliesTheWritesMadeDuringItsBuild) {
  Model model(GetParam(), 3);
  model.upsertNew(1500);
  model.remove(200);
  model.replace(100);
  model.expectMatches("before compaction");
  int rounds = 0;
  model.index().compact([&] {
    ++rounds;
    model.expectMatches("during compaction, round " + std::to_string(rounds));  // searches see the live ads only
    if (rounds == 1) {
      model.upsertNew(1100);
      model.writeBatch(100);
    } else {
      model.writeBatch(10);
    }
  });
  EXPECT_EQ(rounds, 2);
  model.expectMatches("after compaction");
  const cangen::AnnStats after = model.index().stats();
  EXPECT_GT(after.deleted, 0u) << "ads removed during the build stay as tombstones until the next compaction";
  EXPECT_LT(after.deleted, 150u) << "the 300 tombstones from before the compaction are gone";
  model.index().compact();
  EXPECT_EQ(model.index().stats().deleted, 0u);
  EXPECT_EQ(model.index().stats().slots, model.corpus().size());
  model.expectMatches("after a quiet compaction");
  model.writeBatch(20);
  model.expectMatches("after writes following compaction");
}

// A writer thread and a searcher thread race three compactions (each held open a little by its
// hook, so that writes land during every one).
TEST_P(Compaction, RacingWritesAndSearchesEndInTheReference) {
  Model model(GetParam(), 4);
  model.upsertNew(800);
  model.remove(100);
  std::atomic<bool> stop{false};
  std::atomic<int> writesDuringCompaction{0}, badSearches{0};
  std::atomic<bool> compacting{false};
  std::thread writer([&] {
    while (!stop.load()) {
      model.writeBatch(4);
      if (compacting.load()) writesDuringCompaction++;
    }
  });
  std::thread searcher([&] {
    const std::vector<float> q = model.queries();
    while (!stop.load()) {
      const std::set<int64_t> removed = model.removedSoFar();  // removed before the search began
      const cangen::SearchResult r = model.index().search(q.data(), kQueries, kTop, {});
      for (int i = 0; i < kQueries; ++i) {
        std::set<int64_t> seen;
        for (int j = 0; j < kTop; ++j) {
          const int64_t id = r.ids[i * kTop + j];
          if (id == -1) continue;
          if (removed.count(id) || !seen.insert(id).second) badSearches++;
        }
      }
    }
  });
  for (int c = 0; c < 3; ++c) {
    compacting = true;
    model.index().compact([] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); });
    compacting = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  writer.join();
  searcher.join();
  EXPECT_GT(writesDuringCompaction.load(), 0) << "no write overlapped a compaction";
  EXPECT_EQ(badSearches.load(), 0) << "searches returned removed or duplicated ads";
  model.expectMatches("after the race");
}

INSTANTIATE_TEST_SUITE_P(EveryKind, Compaction, ::testing::ValuesIn(kKinds),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
