// A SlotColumn attached to an AdIndex stays in the index's slot numbering: checked with a column
// that keeps a copy of each slot's vector, so that after upserts, replacements, removals and
// compactions (one racing a writer) the column's data at the catalog slot of every live id is that
// id's vector in a reference model. A column whose stage() throws fails the upsert with nothing
// changed, and a column whose owner dropped it is no longer driven.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ann/ad_index.h"
#include "common/error.h"
#include "test_data.h"

namespace {

using cangen::AdAttributes;
using cangen::AdIndex;
using cangen::Bitmap;
using cangen::Catalog;

constexpr int kDim = 8;

// Keeps every slot's vector: the simplest derived data there is.
class CopyColumn : public cangen::SlotColumn {
 public:
  void stage(const float* vectors, size_t n, size_t first) override {
    if (failNext) {
      failNext = false;
      throw std::runtime_error("stage refused");
    }
    rows.resize((first + n) * kDim);
    std::copy(vectors, vectors + n * kDim, rows.begin() + static_cast<std::ptrdiff_t>(first * kDim));
    ++stages;
  }
  void prepareKeep(const std::vector<uint32_t>& keep) override {
    kept.clear();
    for (uint32_t slot : keep) kept.insert(kept.end(), rows.begin() + slot * kDim, rows.begin() + (slot + 1) * kDim);
  }
  void commitKeep() noexcept override { rows.swap(kept); }

  std::vector<float> rows, kept;
  bool failNext = false;
  int stages = 0;
};

// Every live id's column row equals its reference vector, and the column covers every slot.
void ExpectInStep(const AdIndex& index, const CopyColumn& column, const std::map<int64_t, std::vector<float>>& truth) {
  index.readSlots(nullptr, [&](const Catalog& catalog, const Bitmap& live) {
    ASSERT_GE(column.rows.size(), catalog.slots() * kDim);
    ASSERT_EQ(live.count(), truth.size());
    for (const auto& [id, vector] : truth) {
      auto slot = catalog.find(id);
      ASSERT_TRUE(slot.has_value()) << "id " << id;
      for (int j = 0; j < kDim; ++j) ASSERT_EQ(column.rows[*slot * kDim + j], vector[j]) << "id " << id << " at " << j;
    }
  });
}

void Upsert(AdIndex& index, std::map<int64_t, std::vector<float>>& truth, std::vector<int64_t> ids, unsigned seed) {
  std::vector<float> x = cangen::testdata::randomRows(ids.size(), kDim, seed);
  std::vector<AdAttributes> attributes(ids.size());
  index.upsert(ids.data(), x.data(), attributes.data(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) truth[ids[i]] = std::vector<float>(x.begin() + i * kDim, x.begin() + (i + 1) * kDim);
}

TEST(SlotColumn, FollowsUpsertsRemovalsAndCompaction) {
  for (cangen::AnnKind kind : {cangen::AnnKind::Flat, cangen::AnnKind::Hnsw}) {
    cangen::AnnConfig config = cangen::testdata::flatConfig(kDim);
    config.kind = kind;
    AdIndex index(config, 2);
    std::map<int64_t, std::vector<float>> truth;
    std::vector<int64_t> first;
    for (int64_t id = 1; id <= 200; ++id) first.push_back(id);
    Upsert(index, truth, first, 1);

    auto column = std::make_shared<CopyColumn>();
    index.attach(column);  // stages the 200 slots already there
    ExpectInStep(index, *column, truth);

    Upsert(index, truth, {5, 6, 7, 500, 501}, 2);  // three replacements leave dead slots
    std::vector<int64_t> gone = {1, 2, 3, 500};
    EXPECT_EQ(index.remove(gone.data(), gone.size()), 4u);
    for (int64_t id : gone) truth.erase(id);
    ExpectInStep(index, *column, truth);

    index.compact();
    EXPECT_EQ(index.stats().deleted, 0u);
    ExpectInStep(index, *column, truth);
    Upsert(index, truth, {900}, 3);
    ExpectInStep(index, *column, truth);
  }
}

TEST(SlotColumn, AFailedStageFailsTheUpsertWithNothingChanged) {
  AdIndex index(cangen::testdata::flatConfig(kDim), 2);
  std::map<int64_t, std::vector<float>> truth;
  Upsert(index, truth, {1, 2, 3}, 1);
  auto column = std::make_shared<CopyColumn>();
  index.attach(column);
  column->failNext = true;
  EXPECT_THROW(Upsert(index, truth, {2, 4}, 2), std::runtime_error);  // the reference keeps the old 2
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.stats().deleted, 0u);
  ExpectInStep(index, *column, truth);
}

TEST(SlotColumn, CompactionRacingAWriterKeepsTheColumnInStep) {
  cangen::AnnConfig config = cangen::testdata::flatConfig(kDim);
  config.kind = cangen::AnnKind::Hnsw;
  AdIndex index(config, 2);
  std::map<int64_t, std::vector<float>> truth;
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 3000; ++id) ids.push_back(id);
  Upsert(index, truth, ids, 1);
  auto column = std::make_shared<CopyColumn>();
  index.attach(column);
  std::vector<int64_t> dead(ids.begin(), ids.begin() + 1500);
  index.remove(dead.data(), dead.size());
  for (int64_t id : dead) truth.erase(id);

  // Writes land between the compaction's rounds (its hook) and from another thread meanwhile.
  std::map<int64_t, std::vector<float>> racing = truth;
  std::atomic<bool> done{false};
  std::map<int64_t, std::vector<float>> written;
  std::thread writer([&] {
    for (int64_t id = 10000; !done.load() && id < 10400; ++id) Upsert(index, written, {id}, static_cast<unsigned>(id));
  });
  int round = 0;
  index.compact([&] { Upsert(index, racing, {20000 + round}, static_cast<unsigned>(50 + round++)); });
  done = true;
  writer.join();
  for (auto& [id, v] : written) truth[id] = v;
  for (auto& [id, v] : racing) truth[id] = v;
  ExpectInStep(index, *column, truth);
}

TEST(SlotColumn, ADroppedColumnIsNoLongerDriven) {
  AdIndex index(cangen::testdata::flatConfig(kDim), 2);
  std::map<int64_t, std::vector<float>> truth;
  auto column = std::make_shared<CopyColumn>();
  index.attach(column);
  Upsert(index, truth, {1}, 1);
  EXPECT_EQ(column->stages, 1);
  std::weak_ptr<CopyColumn> weak = column;
  column.reset();
  EXPECT_TRUE(weak.expired());
  Upsert(index, truth, {2}, 2);  // would crash were the index still holding the freed column
  EXPECT_EQ(index.size(), 2u);
}

TEST(SlotColumn, AnIndexWithoutItsVectorsRefusesToAttach) {
  cangen::AnnConfig config = cangen::testdata::flatConfig(kDim);
  config.kind = cangen::AnnKind::IvfSq8;
  config.nlist = 2;
  config.storeVectors = false;
  AdIndex index(config, 2);
  try {
    index.attach(std::make_shared<CopyColumn>());
    FAIL() << "attached to an index without its vectors";
  } catch (const cangen::Error& e) {
    EXPECT_EQ(e.code(), cangen::ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("keeps its vectors"), std::string::npos);
  }
}

}  // namespace
