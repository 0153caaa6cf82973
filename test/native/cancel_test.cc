// The cancel flag of AdIndex searches (common/cancel.h): a raised flag ends every kind's search
// with ErrorCode::Aborted; a flag that stays down changes no result.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ann/ad_index.h"
#include "scorer/scorer.h"

namespace {

struct Corpus {
  int dim = 16, n = 3000;
  std::vector<float> vectors, queries;
  std::vector<int64_t> ids;
  Corpus() : vectors(size_t(n) * dim), queries(size_t(8) * dim), ids(n) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    for (float& v : vectors) v = normal(rng);
    for (float& v : queries) v = normal(rng);
    for (int i = 0; i < n; ++i) ids[i] = i + 1;
  }
};

void expectCancellable(cangen::AnnKind kind) {
  Corpus c;
  cangen::AnnConfig config;
  config.kind = kind;
  config.dim = c.dim;
  config.nlist = 8;
  cangen::AdIndex index(config, 2);
  if (!index.isTrained()) index.train(c.vectors.data(), c.n);
  index.upsert(c.ids.data(), c.vectors.data(), nullptr, c.n);

  int32_t word = 0;
  cangen::AnnSearchParams params;
  params.cancel.word = &word;
  const cangen::SearchResult plain = index.search(c.queries.data(), 8, 10, cangen::AnnSearchParams{});
  const cangen::SearchResult down = index.search(c.queries.data(), 8, 10, params);
  EXPECT_EQ(plain.ids, down.ids);
  EXPECT_EQ(plain.scores, down.scores);

  word = 1;
  try {
    index.search(c.queries.data(), 8, 10, params);
    ADD_FAILURE() << "a raised flag must stop the search";
  } catch (const cangen::Error& e) {
    EXPECT_EQ(e.code(), cangen::ErrorCode::Aborted);
    EXPECT_STREQ(cangen::errorCodeName(e.code()), "ERR_ABORTED");
  }
}

TEST(CancelFlag, StopsFlatSearch) { expectCancellable(cangen::AnnKind::Flat); }
TEST(CancelFlag, StopsIvfFlatSearch) { expectCancellable(cangen::AnnKind::IvfFlat); }
TEST(CancelFlag, StopsHnswSearch) { expectCancellable(cangen::AnnKind::Hnsw); }

TEST(CancelFlag, StopsScorerScan) {
  Corpus c;
  cangen::ScorerModel model;
  model.kind = cangen::ScorerKind::Dot;
  model.userDim = model.itemDim = c.dim;
  cangen::Scorer scorer(model, 2);
  scorer.add(c.ids.data(), c.vectors.data(), c.n);
  const float weight = 1.0f;
  int32_t word = 0;
  cangen::ScorerRequest request;
  request.users = c.queries.data();
  request.nu = 8;
  request.headWeights = &weight;
  request.k = 10;
  const cangen::SearchResult plain = scorer.search(request);
  request.cancel.word = &word;
  const cangen::SearchResult down = scorer.search(request);
  EXPECT_EQ(plain.ids, down.ids);
  word = 1;
  try {
    scorer.search(request);
    ADD_FAILURE() << "a raised flag must stop the scan";
  } catch (const cangen::Error& e) {
    EXPECT_EQ(e.code(), cangen::ErrorCode::Aborted);
  }
}

}  // namespace
