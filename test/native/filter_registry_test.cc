// Compiled filters kept current by the writes (native/ann/filter_registry.h): after any random
// sequence of upserts (new and replacing), removes, attribute changes and compactions, on every
// kind, each long-lived filter admits exactly the ads that the reference says it should (the
// spec evaluated here, over a corpus model kept beside the index), its count agrees, a fresh
// compile agrees, filtered searches return only admitted ads, and no search compiled anything.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <faiss/utils/distances.h>

#include "ann/ad_index.h"
#include "index_file_helpers.h"

namespace cangen::testing {
static void PrintTo(const KindCase& c, std::ostream* out) { *out << c.name; }
}  // namespace cangen::testing

namespace {

using cangen::AdAttributes;
using cangen::AdIndex;
using cangen::FilterSpec;
using cangen::testing::KindCase;

constexpr int kDim = 16;

// The reference: the spec evaluated directly over the attributes (no bitmap, no matcher).
bool admits(const FilterSpec& s, int64_t id, const AdAttributes& a) {
  auto in = [](const auto& list, auto value) {
    return !list || std::find(list->begin(), list->end(), value) != list->end();
  };
  if (s.active && (a.active != 0) != *s.active) return false;
  if (!in(s.budgets, a.budget) || !in(s.advertisers, a.advertiser) || !in(s.campaigns, a.campaign) ||
      !in(s.categories, a.category) || !in(s.geos, a.geo) || !in(s.ids, id)) {
    return false;
  }
  return !(s.excludedAdvertisers && std::find(s.excludedAdvertisers->begin(), s.excludedAdvertisers->end(),
                                              a.advertiser) != s.excludedAdvertisers->end());
}

std::vector<FilterSpec> specs() {
  std::vector<FilterSpec> out(6);
  out[0].active = true;
  out[1].categories = std::vector<uint32_t>{2, 0};
  out[1].budgets = std::vector<uint8_t>{0, 1};
  out[2].excludedAdvertisers = std::vector<uint32_t>{1, 3};
  out[2].geos = std::vector<uint32_t>{0, 1, 2};
  out[3].ids = std::vector<int64_t>{5, 17, 40, 41, 99, 150, 151, 7777};  // some never upserted
  out[4].ids = std::vector<int64_t>{3, 8, 12, 60, 61, 62};
  out[4].active = false;
  out[5].advertisers = std::vector<uint32_t>{4};
  return out;
}

AdAttributes randomAttributes(std::mt19937& rng) {
  AdAttributes a;
  a.active = static_cast<uint8_t>(rng() % 4 != 0);
  a.budget = static_cast<uint8_t>(rng() % 3);
  a.advertiser = rng() % 6;
  a.campaign = rng() % 10;
  a.category = rng() % 4;
  a.geo = rng() % 5;
  return a;
}

class FilterRegistry : public ::testing::TestWithParam<KindCase> {};

TEST_P(FilterRegistry, LongLivedFiltersMatchTheReferenceAfterRandomWrites) {
  faiss::distance_compute_blas_threshold = 1 << 30;  // see index_file_helpers.cc
  const KindCase& c = GetParam();
  AdIndex index(c.config, 1);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  auto vectors = [&](size_t n) {
    std::vector<float> v(n * kDim);
    for (float& x : v) x = normal(rng);
    return v;
  };
  if (!index.isTrained()) {
    const std::vector<float> sample = vectors(300);
    index.train(sample.data(), 300);
  }
  std::map<int64_t, AdAttributes> corpus;  // the reference
  const std::vector<FilterSpec> all = specs();
  std::vector<std::shared_ptr<const cangen::CompiledFilter>> filters;
  for (const FilterSpec& s : all) filters.push_back(index.compile(s));  // compiled on the empty index

  const std::vector<float> queries = vectors(3);
  for (int step = 0; step < 60; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const unsigned op = step < 3 ? 0 : rng() % 10;
    if (op < 4) {  // upsert: new ids and present ones
      std::set<int64_t> chosen;
      const size_t n = 1 + rng() % 25;
      while (chosen.size() < n) chosen.insert(rng() % 160);
      std::vector<int64_t> ids(chosen.begin(), chosen.end());
      std::vector<AdAttributes> attributes;
      for (int64_t id : ids) attributes.push_back(corpus[id] = randomAttributes(rng));
      const std::vector<float> x = vectors(ids.size());
      index.upsert(ids.data(), x.data(), attributes.data(), ids.size());
    } else if (op < 6) {  // remove, present and absent ids
      std::vector<int64_t> ids;
      for (int i = 0; i < 8; ++i) ids.push_back(rng() % 170);
      for (int64_t id : ids) corpus.erase(id);
      index.remove(ids.data(), ids.size());
    } else if (op < 9) {  // attribute changes, present and absent ids
      std::vector<int64_t> ids;
      std::vector<AdAttributes> attributes;
      for (int i = 0; i < 10; ++i) {
        const int64_t id = rng() % 170;
        if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
        ids.push_back(id);
        attributes.push_back(randomAttributes(rng));
        if (corpus.count(id)) corpus[id] = attributes.back();
      }
      index.setAttributes(ids.data(), attributes.data(), ids.size());
    } else {
      index.compact();
    }
    ASSERT_EQ(index.size(), corpus.size());

    const uint64_t compilesBefore = index.stats().filterCompiles;
    for (size_t f = 0; f < all.size(); ++f) {
      SCOPED_TRACE("filter " + std::to_string(f));
      std::vector<int64_t> expected;
      for (const auto& [id, a] : corpus) {
        if (admits(all[f], id, a)) expected.push_back(id);
      }
      std::vector<int64_t> got = index.eligibleIds(*filters[f]);
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, expected);
      ASSERT_EQ(filters[f]->count(), expected.size());

      cangen::AnnSearchParams params;
      params.threads = 1;
      params.filter = filters[f].get();
      const cangen::SearchResult r = index.search(queries.data(), 3, 20, params);
      const std::set<int64_t> admitted(expected.begin(), expected.end());
      for (int64_t id : r.ids) ASSERT_TRUE(id == -1 || admitted.count(id)) << "ineligible ad " << id;
      // With this few ads the search is exact over the eligible set: every query finds min(k, |set|).
      for (uint32_t n : r.counts) EXPECT_EQ(n, std::min<size_t>(20, expected.size()));
    }
    EXPECT_EQ(index.stats().filterCompiles, compilesBefore) << "a search compiled a filter";
    // A fresh compile agrees with the maintained one (checked against the reference above).
    const auto fresh = index.compile(all[step % all.size()]);
    EXPECT_EQ(fresh->bits().words, filters[step % all.size()]->bits().words);
  }
  EXPECT_GT(index.stats().filterSlotUpdates, 0u);
}

std::vector<KindCase> kinds() {
  std::vector<KindCase> out;
  for (const KindCase& c : cangen::testing::allKindCases(kDim)) {
    if (c.train && c.name != "faiss-opq-sq" && c.name != "ivf-pq-opq") out.push_back(c);  // OPQ: slow, same paths
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryKind, FilterRegistry, ::testing::ValuesIn(kinds()), [](const auto& info) {
  std::string name = info.param.name;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

TEST(FilterRegistry, DroppedFiltersAreNoLongerMaintained) {
  cangen::AnnConfig config;
  config.dim = kDim;
  AdIndex index(config, 1);
  FilterSpec spec;
  spec.active = true;
  auto kept = index.compile(spec);
  auto dropped = index.compile(spec);
  EXPECT_EQ(index.stats().filters, 2u);
  dropped.reset();
  EXPECT_EQ(index.stats().filters, 1u);
  std::vector<float> x(4 * kDim, 0.5f);
  const std::vector<int64_t> ids = {1, 2, 3, 4};
  index.upsert(ids.data(), x.data(), nullptr, 4);
  EXPECT_EQ(index.stats().filterSlotUpdates, 4u) << "only the kept filter was updated";
  EXPECT_EQ(kept->count(), 4u);
}

TEST(FilterRegistry, AFilterOfAnotherIndexIsRefused) {
  cangen::AnnConfig config;
  config.dim = kDim;
  AdIndex a(config, 1), b(config, 1);
  auto filter = a.compile(FilterSpec{});
  std::vector<float> q(kDim, 1.0f);
  cangen::AnnSearchParams params;
  params.filter = filter.get();
  EXPECT_THROW(b.search(q.data(), 1, 1, params), cangen::Error);
  EXPECT_THROW(b.eligibleIds(*filter), cangen::Error);
}

}  // namespace
