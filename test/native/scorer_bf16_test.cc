// The learned scorer's bf16 tiles, both builds (AVX-512 with VDPBF16PS where this CPU has it, and
// AVX2), against a float64 forward pass of the model written here: each approximate score stays
// within bf16's error of the exact one, the builds agree with each other, and the native scorer
// refuses int8 for MLP and MoL models. And the whole reduced search of a Scorer (bf16 MLP and MoL,
// int8 dot), own ads and attached to an index through writes and a compaction: fp32 scores and
// near-full recall against fp32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ann/ad_index.h"
#include "common/error.h"
#include "flat/reduced_panels.h"
#include "scorer/plan.h"
#include "scorer/scorer.h"
#include "scorer/tile_bf16.h"
#include "test_data.h"

namespace {

using cangen::DenseWeights;
using cangen::kTileAds;
using cangen::ScorerModel;

DenseWeights dense(int in, int out, unsigned seed, bool bias) {
  DenseWeights d;
  d.in = in;
  d.out = out;
  d.weight = cangen::testdata::randomRows(out, in, seed);
  for (float& w : d.weight) w /= std::sqrt(static_cast<float>(in));
  if (bias) d.bias = cangen::testdata::randomRows(1, out, seed + 1);
  return d;
}

std::vector<double> affine(const DenseWeights& d, const std::vector<double>& x) {
  std::vector<double> y(d.out);
  for (int o = 0; o < d.out; ++o) {
    double s = d.bias.empty() ? 0 : d.bias[o];
    for (int i = 0; i < d.in; ++i) s += static_cast<double>(d.weight[static_cast<size_t>(o) * d.in + i]) * x[i];
    y[o] = s;
  }
  return y;
}

std::vector<double> relu(std::vector<double> v) {
  for (double& x : v) x = std::max(x, 0.0);
  return v;
}

std::vector<double> normalized(const std::vector<double>& v, int from, int n) {
  double norm = 0;
  for (int i = 0; i < n; ++i) norm += v[from + i] * v[from + i];
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) out[i] = v[from + i] / std::max(std::sqrt(norm), 1e-12);
  return out;
}

// The float64 MLP ([u, x, u*x] -> relu layers -> blended heads) and MoL of scorer/model.h.
double referenceScore(const ScorerModel& m, const float* u, const float* x, const std::vector<float>& w) {
  std::vector<double> user(u, u + m.userDim), item(x, x + m.itemDim);
  std::vector<double> heads(m.heads, 0.0);
  if (m.kind == cangen::ScorerKind::Mlp) {
    std::vector<double> z(user);
    z.insert(z.end(), item.begin(), item.end());
    for (int j = 0; j < m.itemDim; ++j) z.push_back(user[j] * item[j]);
    for (const DenseWeights& layer : m.hidden) z = relu(affine(layer, z));
    heads = affine(m.output, z);
  } else {
    const int pq = m.queryComponents, px = m.itemComponents, dc = m.componentDim, p = m.logits();
    const std::vector<double> q = affine(m.queryProj, user), k = affine(m.itemProj, item);
    std::vector<double> logits(p);
    for (int i = 0; i < pq; ++i) {
      const std::vector<double> qi = normalized(q, i * dc, dc);
      for (int j = 0; j < px; ++j) {
        const std::vector<double> kj = normalized(k, j * dc, dc);
        double s = 0;
        for (int c = 0; c < dc; ++c) s += qi[c] * kj[c];
        logits[i * px + j] = s / m.temperature;
      }
    }
    std::vector<double> g = affine(m.gateUser, user), gx = affine(m.gateItem, item), gl = affine(m.gateLogits, logits);
    for (int o = 0; o < m.gatingWidth; ++o) g[o] += gx[o] + gl[o];
    const std::vector<double> gates = affine(m.gateOut, relu(g));
    for (int h = 0; h < m.heads; ++h) {
      const double top = *std::max_element(gates.begin() + h * p, gates.begin() + (h + 1) * p);
      double sum = 0, weighted = 0;
      for (int l = 0; l < p; ++l) {
        const double e = std::exp(gates[h * p + l] - top);
        sum += e;
        weighted += e * logits[l];
      }
      heads[h] = weighted / sum;
    }
  }
  double score = 0;
  for (int h = 0; h < m.heads; ++h) score += w[h] * heads[h];
  return score;
}

ScorerModel mlpModel() {
  ScorerModel m;
  m.kind = cangen::ScorerKind::Mlp;
  m.userDim = m.itemDim = 13;  // odd: the last pair of the embedding has a zero half
  m.heads = 2;
  m.hidden = {dense(3 * 13, 40, 1, true), dense(40, 24, 3, true)};
  m.output = dense(24, 2, 5, true);
  return m;
}

ScorerModel molModel() {
  ScorerModel m;
  m.kind = cangen::ScorerKind::Mol;
  m.userDim = 10;
  m.itemDim = 12;
  m.heads = 2;
  m.queryComponents = 3;
  m.itemComponents = 4;
  m.componentDim = 7;  // odd: each component pairs on its own
  m.gatingWidth = 20;
  m.temperature = 0.2f;
  const int p = m.logits();
  m.queryProj = dense(10, 3 * 7, 11, true);
  m.itemProj = dense(12, 4 * 7, 13, true);
  m.gateUser = dense(10, 20, 15, true);
  m.gateItem = dense(12, 20, 17, false);
  m.gateLogits = dense(p, 20, 19, false);
  m.gateOut = dense(20, 2 * p, 21, true);
  return m;
}

// A tile's per-ad planes as the scorer stores them, feature-major [row][32 ads].
struct Planes {
  std::vector<float> first, second;  // MLP: x; MoL: normalised keys, then the gating item half
  std::vector<uint32_t> words;       // the bf16 pairs of `first` (MoL: per component)
};

uint32_t pairOf(const std::vector<float>& rows, int a, int r0, int r1) {
  const uint32_t low = cangen::toBf16(rows[static_cast<size_t>(r0) * kTileAds + a]);
  const uint32_t high = r1 < 0 ? 0 : cangen::toBf16(rows[static_cast<size_t>(r1) * kTileAds + a]);
  return low | high << 16;
}

Planes planesOf(const ScorerModel& m, const std::vector<float>& ads) {
  Planes p;
  if (m.kind == cangen::ScorerKind::Mlp) {
    const int dim = m.itemDim;
    p.first.assign(static_cast<size_t>(dim) * kTileAds, 0);
    for (int a = 0; a < kTileAds; ++a)
      for (int j = 0; j < dim; ++j) p.first[static_cast<size_t>(j) * kTileAds + a] = ads[static_cast<size_t>(a) * dim + j];
    const int pairs = (dim + 1) / 2;
    p.words.resize(static_cast<size_t>(pairs) * kTileAds);
    for (int g = 0; g < pairs; ++g)
      for (int a = 0; a < kTileAds; ++a) p.words[static_cast<size_t>(g) * kTileAds + a] = pairOf(p.first, a, 2 * g, 2 * g + 1 < dim ? 2 * g + 1 : -1);
    return p;
  }
  const int px = m.itemComponents, dc = m.componentDim, gpad = cangen::padRows(m.gatingWidth), pairs = (dc + 1) / 2;
  p.first.assign(static_cast<size_t>(px) * dc * kTileAds, 0);
  p.second.assign(static_cast<size_t>(gpad) * kTileAds, 0);
  p.words.resize(static_cast<size_t>(px) * pairs * kTileAds);
  for (int a = 0; a < kTileAds; ++a) {
    const std::vector<double> x(ads.begin() + a * m.itemDim, ads.begin() + (a + 1) * m.itemDim);
    const std::vector<double> k = affine(m.itemProj, x), g = affine(m.gateItem, x);
    for (int j = 0; j < px; ++j) {
      const std::vector<double> kj = normalized(k, j * dc, dc);
      for (int c = 0; c < dc; ++c) p.first[static_cast<size_t>(j * dc + c) * kTileAds + a] = static_cast<float>(kj[c]);
    }
    for (int o = 0; o < m.gatingWidth; ++o) p.second[static_cast<size_t>(o) * kTileAds + a] = static_cast<float>(g[o]);
  }
  for (int j = 0; j < px; ++j)
    for (int c = 0; c < pairs; ++c)
      for (int a = 0; a < kTileAds; ++a)
        p.words[static_cast<size_t>(j * pairs + c) * kTileAds + a] = pairOf(p.first, a, j * dc + 2 * c, 2 * c + 1 < dc ? j * dc + 2 * c + 1 : -1);
  return p;
}

ScorerModel dotModel() {
  ScorerModel m;
  m.kind = cangen::ScorerKind::Dot;
  m.userDim = m.itemDim = 13;
  m.heads = 2;
  m.dotProjection = cangen::testdata::randomRows(2 * 13, 13, 23);
  return m;
}

struct Build {
  const char* name;
  const cangen::TileKernelsBf16& kernels;
  bool runs;
};

// 32 ads x 5 users through each bf16 build: within 2% of the scores' spread of float64 (bf16
// keeps 8 significant bits), and the two builds within 0.1% of each other (same products,
// different summation order).
void expectBuildsNearTheReference(const ScorerModel& m) {
  const std::vector<float> ads = cangen::testdata::randomRows(kTileAds, m.itemDim, 31);
  const std::vector<float> users = cangen::testdata::randomRows(5, m.userDim, 32);
  const std::vector<float> weights = {1.0f, 0.5f};
  const Planes planes = planesOf(m, ads);
  const cangen::TileIn x{planes.first.data(), planes.first.data() + 16, kTileAds};
  const cangen::TileIn gate{planes.second.data(), planes.second.data() + 16, kTileAds};
  const cangen::TileWords words{planes.words.data(), planes.words.data() + 16, kTileAds};
  cangen::PackedDense itemHalf, gateItem;
  const bool mlp = m.kind == cangen::ScorerKind::Mlp;
  cangen::MlpPlan mlpPlan;
  cangen::MolPlan molPlan;
  if (mlp) mlpPlan = cangen::buildMlpPlan(m, itemHalf);
  else molPlan = cangen::buildMolPlan(m, itemHalf, gateItem);
  const cangen::MlpPlanBf16 mlpBf16 = mlp ? cangen::buildMlpPlanBf16(mlpPlan) : cangen::MlpPlanBf16{};
  const cangen::MolPlanBf16 molBf16 = mlp ? cangen::MolPlanBf16{} : cangen::buildMolPlanBf16(molPlan);
  std::vector<float> scratch(mlp ? cangen::mlpScratchFloats(mlpPlan) : cangen::molScratchFloats(molPlan));
  std::vector<uint32_t> scratchWords(mlp ? cangen::mlpScratchWords(mlpPlan) : cangen::molScratchWords(molPlan));

  const bool native = cangen::cpuHasBf16Dot();
  std::vector<std::vector<float>> byBuild;
  for (const Build& build : {Build{"avx512-bf16", cangen::tile_avx512::kernelsBf16, native},
                             Build{"avx2-bf16", cangen::tile_avx2::kernelsBf16, true}}) {
    if (!build.runs) {
      std::printf("skipped: this CPU lacks the AVX-512 BF16 instruction\n");
      continue;
    }
    std::vector<float> all;
    for (int u = 0; u < 5; ++u) {
      const float* user = users.data() + static_cast<size_t>(u) * m.userDim;
      float scores[kTileAds];
      if (mlp) {
        const cangen::MlpUserPlan plan = cangen::buildMlpUser(m, mlpPlan, user, weights.data());
        build.kernels.mlp(mlpPlan, mlpBf16, plan, cangen::packPairs(plan.first), x, words, scratch.data(), scratchWords.data(), scores);
      } else {
        const cangen::MolUserPlan plan = cangen::buildMolUser(m, molPlan, user, weights.data());
        build.kernels.mol(molPlan, molBf16, plan, cangen::packPairs(plan.query), words, gate, scratch.data(), scratchWords.data(), scores);
      }
      std::vector<double> exact(kTileAds);
      for (int a = 0; a < kTileAds; ++a) exact[a] = referenceScore(m, user, ads.data() + static_cast<size_t>(a) * m.itemDim, weights);
      const double spread = *std::max_element(exact.begin(), exact.end()) - *std::min_element(exact.begin(), exact.end());
      double largest = 0;
      for (int a = 0; a < kTileAds; ++a) {
        EXPECT_LE(std::fabs(scores[a] - exact[a]), 0.02 * spread) << build.name << " user " << u << " ad " << a;
        largest = std::max(largest, std::fabs(scores[a] - exact[a]));
      }
      // Not fp32 in disguise: bf16 rounding shows (fp32 tiles agree with float64 to ~1e-6).
      EXPECT_GT(largest, 1e-5 * spread) << build.name << " user " << u;
      all.insert(all.end(), scores, scores + kTileAds);
    }
    byBuild.push_back(all);
  }
  if (byBuild.size() == 2) {
    float spread = 0;
    for (float s : byBuild[1]) spread = std::max(spread, std::fabs(s));
    for (size_t i = 0; i < byBuild[0].size(); ++i) EXPECT_NEAR(byBuild[0][i], byBuild[1][i], 1e-3 * spread) << i;
  }
}

TEST(ScorerBf16, MlpTilesOfBothBuildsStayNearTheFloat64Scores) { expectBuildsNearTheReference(mlpModel()); }

TEST(ScorerBf16, MolTilesOfBothBuildsStayNearTheFloat64Scores) { expectBuildsNearTheReference(molModel()); }

// The bf16 search's answer against the fp32 search's: every score an fp32 score of that ad
// (Scorer::score), every row sorted, at least 95% of each row in the fp32 top k (all of it for dot).
void expectBf16SearchNearFp32(const cangen::Scorer& bf16, const cangen::Scorer& fp32, const std::vector<float>& users, int nu,
                              int k, const std::string& what) {
  const std::vector<float> weights = {1.0f, 0.5f};
  cangen::ScorerRequest r;
  r.users = users.data();
  r.nu = nu;
  r.headWeights = weights.data();
  r.k = k;
  const cangen::SearchResult got = bf16.search(r), want = fp32.search(r);
  for (int u = 0; u < nu; ++u) {
    ASSERT_EQ(got.counts[u], want.counts[u]) << what;
    const size_t row = static_cast<size_t>(u) * k;
    std::vector<int64_t> ids(got.ids.begin() + row, got.ids.begin() + row + got.counts[u]);
    const std::vector<float> exact = fp32.score(users.data() + static_cast<size_t>(u) * bf16.model().userDim, 1, weights.data(),
                                                ids.data(), ids.size(), 1);
    size_t hits = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(got.scores[row + i], exact[i]) << what << " user " << u << " rank " << i;
      if (i > 0) EXPECT_GE(got.scores[row + i - 1], got.scores[row + i]) << what;
      hits += std::count(want.ids.begin() + row, want.ids.begin() + row + want.counts[u], ids[i]);
    }
    // The dot kind's window is proven: the answer is the fp32 one.
    EXPECT_GE(hits, (bf16.model().kind == cangen::ScorerKind::Dot ? 1.0 : 0.95) * ids.size()) << what << " user " << u;
  }
}

TEST(ScorerBf16, SearchesReturnFp32ScoresWithNearFullRecall) {
  const size_t n = 3000;
  const std::pair<ScorerModel, cangen::Precision> cases[] = {
      {mlpModel(), cangen::Precision::Bf16}, {molModel(), cangen::Precision::Bf16}, {dotModel(), cangen::Precision::Int8}};
  for (const auto& [m, precision] : cases) {
    const std::vector<float> ads = cangen::testdata::randomRows(n, m.itemDim, 41);
    const std::vector<float> users = cangen::testdata::randomRows(4, m.userDim, 42);
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i) + 1;
    cangen::Scorer fp32(m, 2), bf16(m, 2, precision);
    for (cangen::Scorer* s : {&fp32, &bf16}) s->add(ids.data(), ads.data(), n);
    for (int k : {1, 10, 100}) expectBf16SearchNearFp32(bf16, fp32, users, 4, k, "own ads, k " + std::to_string(k));

    // Attached: the planes and their bf16 copy follow upserts, removals and a compaction.
    auto fp32Attached = std::make_shared<cangen::Scorer>(m, 2);
    auto bf16Attached = std::make_shared<cangen::Scorer>(m, 2, precision);
    auto index = std::make_shared<cangen::AdIndex>(cangen::testdata::flatConfig(m.itemDim), 1);
    index->upsert(ids.data(), ads.data(), nullptr, n / 2);
    fp32Attached->attach(index);
    bf16Attached->attach(index);
    index->upsert(ids.data() + n / 2, ads.data() + n / 2 * m.itemDim, nullptr, n - n / 2);
    index->remove(ids.data() + 100, 700);
    expectBf16SearchNearFp32(*bf16Attached, *fp32Attached, users, 4, 50, "attached after writes");
    index->compact();
    expectBf16SearchNearFp32(*bf16Attached, *fp32Attached, users, 4, 50, "attached after compaction");
  }
}

TEST(ScorerBf16, Int8IsRefusedForMlpAndMol) {
  for (const ScorerModel& m : {mlpModel(), molModel()}) {
    try {
      cangen::Scorer scorer(m, 1, cangen::Precision::Int8);
      FAIL() << "expected InvalidArgument";
    } catch (const cangen::Error& e) {
      EXPECT_EQ(e.code(), cangen::ErrorCode::InvalidArgument);
      EXPECT_NE(std::string(e.what()).find("int8 is for kind 'dot'"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
