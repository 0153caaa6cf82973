// Every write is all or nothing: for each write kind and index kind, the 1st, 2nd, ... allocation of
// the write fails in turn (support/alloc_faults.h), and after each failure the index must be exactly
// as before: same size and generation, same search results, the same eligible ids, exact search
// equal to a float64 brute force over a reference corpus kept here, and no id the reference lacks.
// A filter compiled before the write (and kept current by it) must admit, after a failed write,
// exactly what it admitted before, and after the write what a fresh compile admits.
// The write is then retried, so the last round (no allocation left to fail) checks that a write
// after all those failures succeeds and leaves the index equal to the reference with it applied.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <ostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ann/ad_index.h"
#include "common/error.h"
#include "support/alloc_faults.h"
#include "test_data.h"

namespace {

using cangen::AdAttributes;
using cangen::AdIndex;
using cangen::AnnConfig;
using cangen::AnnKind;
using cangen::Metric;
using cangen::test::FailNthAllocation;

constexpr int kDim = 16;
constexpr int kBase = 300;
constexpr int kQueries = 4;
constexpr int kTop = 8;
constexpr uint32_t kCategories = 3;

// The corpus as the index should hold it: id -> embedding and attributes.
using Ad = cangen::testdata::ReferenceAd;
using Corpus = std::map<int64_t, Ad>;

std::vector<float> randomVectors(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

AdAttributes attributesOf(int64_t id, uint32_t salt = 0) {
  AdAttributes a;
  a.category = static_cast<uint32_t>((id + salt) % kCategories);
  a.advertiser = static_cast<uint32_t>(id % 7);
  return a;
}

struct KindCase {
  const char* name;
  AnnKind kind;
  Metric metric;
};

const KindCase kKinds[] = {
    {"flat", AnnKind::Flat, Metric::L2},        {"ivf-flat", AnnKind::IvfFlat, Metric::InnerProduct},
    {"ivf-pq", AnnKind::IvfPq, Metric::L2},     {"ivf-sq8", AnnKind::IvfSq8, Metric::InnerProduct},
    {"hnsw", AnnKind::Hnsw, Metric::L2},
};

void PrintTo(const KindCase& kind, std::ostream* out) { *out << kind.name; }

std::unique_ptr<AdIndex> makeIndex(const KindCase& kind, Corpus& corpus) {
  AnnConfig config = cangen::testdata::smallConfig(kind.kind, kDim, kind.metric);
  config.nprobe = 2;
  auto index = std::make_unique<AdIndex>(config, 1);
  if (kind.kind != AnnKind::Flat) {
    // IVF: FAISS's 39 points per centroid; PQ's 256 centroids get 8 each (FAISS warns), which keeps
    // its k-means quick and is plenty for these checks.
    const size_t sample = kind.kind == AnnKind::IvfPq ? 256 * 8 : 8 * 39;
    const std::vector<float> x = randomVectors(sample, 2);
    index->train(x.data(), sample);
  }
  const std::vector<float> base = randomVectors(kBase, 1);
  std::vector<int64_t> ids(kBase);
  std::vector<AdAttributes> attributes(kBase);
  for (int i = 0; i < kBase; ++i) {
    ids[i] = 1000 + i;
    attributes[i] = attributesOf(ids[i]);
    corpus[ids[i]] = {std::vector<float>(base.begin() + i * kDim, base.begin() + (i + 1) * kDim), attributes[i]};
  }
  index->upsert(ids.data(), base.data(), attributes.data(), kBase);
  return index;
}

cangen::FilterSpec everyCategory() {
  cangen::FilterSpec spec;
  spec.categories = std::vector<uint32_t>{0, 1, 2};
  return spec;
}

// What a search returns, comparable bit for bit (NaN padding included).
struct Answer {
  std::vector<int64_t> ids;
  std::vector<uint32_t> scoreBits;
  bool operator==(const Answer& o) const { return ids == o.ids && scoreBits == o.scoreBits; }
};

Answer answerOf(const cangen::SearchResult& r) {
  Answer a{r.ids, std::vector<uint32_t>(r.scores.size())};
  std::memcpy(a.scoreBits.data(), r.scores.data(), r.scores.size() * sizeof(float));
  return a;
}

// Everything a user can observe of an index.
struct Observed {
  size_t live, slots, deleted;
  uint64_t generation;
  Answer unfiltered, filtered;
  std::vector<std::vector<int64_t>> eligibleByCategory;
  std::vector<int64_t> longLived;  // what the filter compiled before the write admits (category 1)
  size_t longLivedCount = 0;
  bool operator==(const Observed& o) const {
    return live == o.live && slots == o.slots && deleted == o.deleted && generation == o.generation &&
           unfiltered == o.unfiltered && filtered == o.filtered && eligibleByCategory == o.eligibleByCategory &&
           longLived == o.longLived && longLivedCount == o.longLivedCount;
  }
};

const std::vector<float>& queries() {
  static const std::vector<float> q = randomVectors(kQueries, 99);
  return q;
}

cangen::FilterSpec categoryOne() {
  cangen::FilterSpec spec;
  spec.categories = std::vector<uint32_t>{1};
  return spec;
}

Observed observe(const AdIndex& index, const cangen::CompiledFilter& longLived) {
  const cangen::AnnStats s = index.stats();
  Observed o{s.live, s.slots, s.deleted, s.generation, {}, {}, {}, index.eligibleIds(longLived), longLived.count()};
  std::sort(o.longLived.begin(), o.longLived.end());
  o.unfiltered = answerOf(index.search(queries().data(), kQueries, kTop, {}));
  cangen::AnnSearchParams params;
  const auto filter = index.compile(everyCategory());
  params.filter = filter.get();
  o.filtered = answerOf(index.search(queries().data(), kQueries, kTop, params));
  for (uint32_t c = 0; c < kCategories; ++c) {
    cangen::FilterSpec spec;
    spec.categories = std::vector<uint32_t>{c};
    o.eligibleByCategory.push_back(index.eligibleIds(spec));
    std::sort(o.eligibleByCategory.back().begin(), o.eligibleByCategory.back().end());
  }
  return o;
}

// The index against the reference corpus: sizes, eligible ids by category, exact (filtered)
// search equal to a float64 brute force, and no unknown id from the approximate search.
void expectMatches(const Observed& o, const Corpus& corpus, Metric metric, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(o.live, corpus.size());
  for (uint32_t c = 0; c < kCategories; ++c) {
    std::vector<int64_t> expected;
    for (const auto& [id, ad] : corpus) {
      if (ad.attributes.category == c) expected.push_back(id);
    }
    EXPECT_EQ(o.eligibleByCategory[c], expected) << "category " << c;
  }
  EXPECT_EQ(o.longLived, o.eligibleByCategory[1]) << "the long-lived filter differs from a fresh compile";
  EXPECT_EQ(o.longLivedCount, o.longLived.size());
  for (int q = 0; q < kQueries; ++q) {
    const float* query = queries().data() + q * kDim;
    std::vector<std::pair<double, int64_t>> exact;  // (rank key, id), best first
    for (const auto& [id, ad] : corpus) {
      double s = 0;
      for (int j = 0; j < kDim; ++j) {
        s += metric == Metric::L2 ? (double(query[j]) - ad.vector[j]) * (double(query[j]) - ad.vector[j])
                                  : double(query[j]) * ad.vector[j];
      }
      exact.push_back({metric == Metric::L2 ? s : -s, id});
    }
    std::sort(exact.begin(), exact.end());
    for (int r = 0; r < kTop && r < static_cast<int>(exact.size()); ++r) {
      EXPECT_EQ(o.filtered.ids[q * kTop + r], exact[r].second) << "query " << q << " rank " << r;
    }
    for (int r = 0; r < kTop; ++r) {
      const int64_t id = o.unfiltered.ids[q * kTop + r];
      EXPECT_TRUE(id == -1 || corpus.count(id)) << "ghost id " << id << " from the approximate search";
    }
  }
}

// A write: what it does to the reference corpus, and the index call that does it, its arguments
// made beforehand so that only the index allocates while failures are injected.
using IndexCall = std::function<void(AdIndex&)>;

struct WriteCase {
  const char* name;
  std::function<void(AdIndex&, Corpus&)> setup;  // before the write (may be empty)
  std::function<IndexCall(Corpus&)> plan;        // applies the write to the corpus, returns the call
  bool allocates = true;  // false: the write cannot fail because it allocates nothing
};

std::vector<int64_t> range(int64_t first, int64_t n) {
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = first + i;
  return ids;
}

IndexCall upsertCall(Corpus& corpus, const std::vector<int64_t>& ids, uint32_t seed, uint32_t salt) {
  struct Batch {
    std::vector<int64_t> ids;
    std::vector<float> vectors;
    std::vector<AdAttributes> attributes;
  };
  auto batch = std::make_shared<Batch>(Batch{ids, randomVectors(ids.size(), seed), {}});
  for (size_t i = 0; i < ids.size(); ++i) {
    batch->attributes.push_back(attributesOf(ids[i], salt));
    corpus[ids[i]] = {std::vector<float>(batch->vectors.begin() + i * kDim, batch->vectors.begin() + (i + 1) * kDim),
                      batch->attributes[i]};
  }
  return [batch](AdIndex& index) {
    index.upsert(batch->ids.data(), batch->vectors.data(), batch->attributes.data(), batch->ids.size());
  };
}

// Present (replaced) and new ids together.
std::vector<int64_t> mixedIds() {
  std::vector<int64_t> ids = range(1000, 6);
  for (int64_t id : range(1100, 4)) ids.push_back(id);
  for (int64_t id : range(6000, 5)) ids.push_back(id);
  return ids;
}

// Present, absent and repeated ids.
const std::vector<int64_t> kRemoved = {1003, 1010, 1011, 1200, 99999, 1010};

IndexCall removeCall(Corpus& corpus) {
  for (int64_t id : kRemoved) corpus.erase(id);
  return [](AdIndex& index) { index.remove(kRemoved.data(), kRemoved.size()); };
}

IndexCall setAttributesCall(Corpus& corpus) {
  static const std::vector<int64_t> ids = range(1020, 10);
  static const std::vector<AdAttributes> attributes = [] {
    std::vector<AdAttributes> a;
    for (int64_t id : ids) a.push_back(attributesOf(id, 2));
    return a;
  }();
  for (size_t i = 0; i < ids.size(); ++i) corpus[ids[i]].attributes = attributes[i];
  return [](AdIndex& index) { index.setAttributes(ids.data(), attributes.data(), ids.size()); };
}

const WriteCase kWrites[] = {
    {"upsert-new", nullptr, [](Corpus& c) { return upsertCall(c, range(5000, 12), 7, 0); }},
    {"upsert-replace", nullptr, [](Corpus& c) { return upsertCall(c, mixedIds(), 8, 1); }},
    {"remove", nullptr, removeCall},
    {"set-attributes", nullptr, setAttributesCall, false},
    {"compact",
     [](AdIndex& index, Corpus& c) {  // tombstones from removed and from replaced ads
       removeCall(c)(index);
       upsertCall(c, mixedIds(), 9, 1)(index);
     },
     [](Corpus&) -> IndexCall { return [](AdIndex& index) { index.compact(); }; }, true},
};

void PrintTo(const WriteCase& write, std::ostream* out) { *out << write.name; }

// Runs `write` with its 1st, 2nd, ... allocation failing until it no longer reaches the failure;
// `check` sees the index after each failure and after the final success. Returns the failures.
size_t failEachAllocation(const std::function<void()>& write, const std::function<void(bool failed)>& check) {
  size_t failures = 0;
  for (size_t nth = 1;; ++nth) {
    bool threw = false, fired = false;
    {
      FailNthAllocation fault(nth);
      try {
        write();
      } catch (const std::exception&) {
        threw = true;
      }
      fired = fault.fired();
    }
    // A failure the write absorbed must still leave a consistent index; it counts as success.
    if (!threw) {
      check(false);
      return failures;
    }
    if (!fired) {
      ADD_FAILURE() << "allocation " << nth << ": the write threw without an injected failure (an earlier one broke the index)";
      return failures;
    }
    ++failures;
    check(true);
    if (::testing::Test::HasFatalFailure() || nth > 100000) return failures;
  }
}

class AdIndexWrites : public ::testing::TestWithParam<std::tuple<KindCase, WriteCase>> {};

TEST_P(AdIndexWrites, AreAllOrNothingUnderAllocationFailure) {
  const auto& [kind, write] = GetParam();
  Corpus before;
  std::unique_ptr<AdIndex> index = makeIndex(kind, before);
  const auto longLived = index->compile(categoryOne());  // before the setup's writes too
  if (write.setup) write.setup(*index, before);
  const Observed snapshot = observe(*index, *longLived);
  expectMatches(snapshot, before, kind.metric, "before the write");
  Corpus after = before;
  const IndexCall call = write.plan(after);

  bool succeeded = false;
  const size_t failures = failEachAllocation([&] { call(*index); },
                                             [&](bool failed) {
                                               const Observed now = observe(*index, *longLived);
                                               if (failed) {
                                                 EXPECT_TRUE(now == snapshot) << "the index changed after a failed write";
                                                 expectMatches(now, before, kind.metric, "after a failed write");
                                               } else {
                                                 succeeded = true;
                                                 EXPECT_GT(now.generation, snapshot.generation);
                                                 expectMatches(now, after, kind.metric, "after the write");
                                               }
                                             });
  RecordProperty("injectedFailures", static_cast<int>(failures));
  EXPECT_TRUE(succeeded);
  if (write.allocates) {
    EXPECT_GT(failures, 0u) << "no allocation of the write was made to fail";
  } else {
    EXPECT_EQ(failures, 0u) << "a write that should allocate nothing allocated";
  }
  // And the index keeps working: a later upsert of the same ids (or of new ones) is accepted.
  upsertCall(after, mixedIds(), 11, 0)(*index);
  expectMatches(observe(*index, *longLived), after, kind.metric, "after a later upsert");
}

INSTANTIATE_TEST_SUITE_P(EveryKindAndWrite, AdIndexWrites, ::testing::Combine(::testing::ValuesIn(kKinds), ::testing::ValuesIn(kWrites)),
                         [](const auto& info) {
                           std::string name = std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param).name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// add(): an insert-only upsert (what the FlatIndex and FaissIndex presets call), on the exact kind
// and on FAISS factory kinds. A failed add leaves size and search results as they were; the add
// that finally succeeds makes every added vector its own nearest neighbour; adding the same ids
// again is then refused as a duplicate and changes nothing.
void expectAddIsAllOrNothing(AdIndex& index) {
  const std::vector<float> base = randomVectors(kBase, 1);
  const std::vector<int64_t> baseIds = range(1000, kBase);
  index.upsert(baseIds.data(), base.data(), nullptr, kBase, true);
  const Answer before = answerOf(index.search(queries().data(), kQueries, kTop, {}));
  const std::vector<float> added = randomVectors(10, 2);
  const std::vector<int64_t> addedIds = range(5000, 10);

  const size_t failures = failEachAllocation(
      [&] { index.upsert(addedIds.data(), added.data(), nullptr, addedIds.size(), true); },
      [&](bool failed) {
        const Answer now = answerOf(index.search(queries().data(), kQueries, kTop, {}));
        if (failed) {
          EXPECT_EQ(index.size(), size_t(kBase));
          EXPECT_TRUE(now == before) << "search results changed after a failed add";
          const cangen::SearchResult own = index.search(added.data(), static_cast<int>(addedIds.size()), 1, {});
          for (int64_t id : own.ids) EXPECT_LT(id, 5000) << "ghost id " << id << " after a failed add";
        } else {
          EXPECT_EQ(index.size(), size_t(kBase + 10));
          for (size_t i = 0; i < addedIds.size(); ++i) {
            const cangen::SearchResult r = index.search(added.data() + i * kDim, 1, 1, {});
            EXPECT_EQ(r.ids[0], addedIds[i]);
          }
        }
      });
  EXPECT_GT(failures, 0u);
  // One new id and one present: the batch is refused whole, and the present ad keeps its vector.
  const int64_t again[] = {7000, addedIds[0]};
  const std::vector<float> other = randomVectors(2, 4);
  const uint64_t generation = index.generation();
  try {
    index.upsert(again, other.data(), nullptr, 2, true);
    ADD_FAILURE() << "an add of a present id was accepted";
  } catch (const cangen::Error& e) {
    EXPECT_EQ(e.code(), cangen::ErrorCode::DuplicateId);
  }
  EXPECT_EQ(index.size(), size_t(kBase + 10));
  EXPECT_EQ(index.generation(), generation);
  EXPECT_EQ(index.search(added.data(), 1, 1, {}).ids[0], addedIds[0]);
  EXPECT_NE(index.search(other.data(), 1, 1, {}).ids[0], 7000);
}

TEST(InsertOnlyWrites, FlatAddIsAllOrNothingUnderAllocationFailure) {
  AdIndex index(cangen::testdata::flatConfig(kDim, Metric::L2), 1);
  expectAddIsAllOrNothing(index);
}

TEST(InsertOnlyWrites, FaissAddIsAllOrNothingUnderAllocationFailure) {
  for (const char* factory : {"Flat", "IVF8,Flat", "HNSW8"}) {
    SCOPED_TRACE(factory);
    AnnConfig config;
    config.kind = AnnKind::Factory;
    config.dim = kDim;
    config.metric = Metric::L2;
    config.factory = factory;
    config.storeVectors = false;  // as the FaissIndex preset builds it
    AdIndex index(config, 1);
    const std::vector<float> sample = randomVectors(8 * 39, 3);
    index.train(sample.data(), 8 * 39);
    expectAddIsAllOrNothing(index);
  }
}

}  // namespace
