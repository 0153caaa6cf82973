// The native sequence encoder without Node (also run under ASan + UBSan): time buckets against
// hand-computed values, batch and model validation, unknown rows, and the session cache (equal to
// a full run bit for bit, least recently used out within its byte budget). Parity with PyTorch
// is test/sequence-encoder.test.ts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/gpu_flat_search.h"
#include "sequence/encoders.h"
#include "sequence/linear_kernels.h"
#include "sequence/sequence_encoder.h"
#include "sequence/session_cache.h"

namespace {

using namespace cangen;

std::vector<float> randomValues(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

LinearWeights randomLinear(int in, int out, std::mt19937& rng) {
  return LinearWeights{in, out, randomValues(static_cast<size_t>(in) * out, rng), randomValues(out, rng)};
}

// A small HSTU model with every part: actions, time bias, long-term fusion, 2 interests.
SequenceModel smallHstu(int numItems = 20) {
  std::mt19937 rng(7);
  SequenceModel m;
  m.kind = SequenceKind::Hstu;
  m.dim = 8;
  m.heads = 2;
  m.maxLen = 6;
  m.timeBuckets = 16;
  m.useTimes = true;
  m.longTerm = true;
  m.interests = 2;
  m.normalizeQuery = true;
  m.numItems = numItems;
  m.numActions = 2;
  m.itemIdWeight = randomValues(static_cast<size_t>(numItems + 1) * m.dim, rng);
  m.actionWeight = randomValues(3 * m.dim, rng);
  for (int l = 0; l < 2; ++l) {
    m.hstuLayers.push_back({randomLinear(m.dim, 4 * m.dim, rng), randomLinear(m.dim, m.dim, rng), randomValues(m.maxLen, rng),
                            randomValues(m.timeBuckets + 1, rng)});
  }
  m.finalNormGamma = randomValues(m.dim, rng);
  m.finalNormBeta = randomValues(m.dim, rng);
  m.longScore = randomValues(m.dim, rng);
  m.longProj = randomLinear(m.dim, m.dim, rng);
  m.fuseGate = randomLinear(2 * m.dim, m.dim, rng);
  m.interestProj = randomLinear(m.dim, 2 * m.dim, rng);
  return m;
}

struct Histories {
  std::vector<uint32_t> offsets{0};
  std::vector<int32_t> items, actions;
  std::vector<double> times;
  void add(const std::vector<int32_t>& rows, double firstTime = 1000) {
    for (size_t k = 0; k < rows.size(); ++k) {
      items.push_back(rows[k]);
      actions.push_back(static_cast<int32_t>(k % 3));
      times.push_back(firstTime + 37.0 * k * k);
    }
    offsets.push_back(static_cast<uint32_t>(items.size()));
  }
  SequenceBatch batch() const {
    SequenceBatch b;
    b.users = static_cast<int64_t>(offsets.size()) - 1;
    b.offsets = offsets.data();
    b.events = items.size();
    b.items = items.data();
    b.actions = actions.data();
    b.times = times.data();
    return b;
  }
};

std::vector<float> encode(const SequenceEncoder& encoder, const Histories& h) {
  std::vector<float> out(static_cast<size_t>(h.offsets.size() - 1) * encoder.interests() * encoder.dim());
  encoder.encode(h.batch(), out.data(), 1);
  return out;
}

TEST(SequenceLinear, EveryKernelGivesTheSameBitsAndMatchesFloat64) {
  using namespace cangen::sequence;
  std::vector<std::pair<const char*, LinearKernel>> kernels{{"scalar", linearScalar}};
#if defined(__AVX2__) && defined(__FMA__)
  kernels.push_back({"avx2", linearAvx2});
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    kernels.push_back({"avx512", linearAvx512});
  } else {
    std::printf("skipped: the AVX-512 kernel (this CPU has no AVX-512)\n");
  }
#endif
  std::mt19937 rng(11);
  for (int out : {1, 15, 16, 17, 31, 32, 33, 48, 64, 100, 256}) {
    for (int rows : {1, 3, 4, 5, 8, 9, 17}) {
      const int in = 1 + static_cast<int>(rng() % 70);
      const std::vector<float> x = randomValues(static_cast<size_t>(rows) * in, rng), w = randomValues(static_cast<size_t>(in) * out, rng),
                               bias = randomValues(out, rng);
      std::vector<float> want(static_cast<size_t>(rows) * out);
      linearScalar(x.data(), rows, w.data(), bias.data(), in, out, want.data());
      for (int r = 0; r < rows; ++r) {
        for (int o = 0; o < out; ++o) {
          double sum = bias[o];
          for (int i = 0; i < in; ++i) sum += static_cast<double>(x[static_cast<size_t>(r) * in + i]) * w[static_cast<size_t>(i) * out + o];
          ASSERT_NEAR(want[static_cast<size_t>(r) * out + o], sum, 1e-5 * (1 + std::abs(sum))) << rows << " x " << in << " -> " << out;
        }
      }
      for (const auto& [name, kernel] : kernels) {
        std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
        kernel(x.data(), rows, w.data(), bias.data(), in, out, got.data());
        ASSERT_EQ(got, want) << name << ": " << rows << " x " << in << " -> " << out;
      }
    }
  }
  EXPECT_STRNE(linearKernelName(bestLinearKernel()), "unknown");
}

TEST(SequenceEncoder, TimeBucketsAreLogarithmicInTheAbsoluteGapAndCapped) {
  EXPECT_EQ(sequence::timeBucket(0, 64), 0);        // gaps under a second count as one: ln 1 = 0
  EXPECT_EQ(sequence::timeBucket(0.5, 64), 0);
  EXPECT_EQ(sequence::timeBucket(2, 64), 2);        // ln 2 / 0.301 = 2.30
  EXPECT_EQ(sequence::timeBucket(-60, 64), 13);     // ln 60 / 0.301 = 13.60: the sign does not matter
  EXPECT_EQ(sequence::timeBucket(86400, 64), 37);   // ln 86400 / 0.301 = 37.78
  EXPECT_EQ(sequence::timeBucket(1e12, 64), 64);    // ln 1e12 / 0.301 = 91.8, capped
  EXPECT_EQ(sequence::timeBucket(1e12, 10), 10);
}

TEST(SequenceEncoder, VectorSiluMatchesFloat64WhereverAValueSits) {
  std::vector<float> values;
  for (float v = -100.0f; v <= 100.0f; v += 0.173f) values.push_back(v);
  values.push_back(0.0f);
  std::vector<float> all = values;
  sequence::siluInPlace(all.data(), all.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values[i], want = x / (1.0 + std::exp(-x));
    EXPECT_LE(std::fabs(all[i] - want), 3e-7 * std::fabs(want) + 1e-30) << "silu(" << x << ") = " << all[i] << ", float64 " << want;
    float alone = values[i];  // one value, through the tail path: the same float
    sequence::siluInPlace(&alone, 1);
    EXPECT_EQ(alone, all[i]) << x;
  }
}

TEST(SequenceEncoder, RejectsBadBatchesWithTypedErrors) {
  SequenceEncoder encoder(smallHstu());
  Histories h;
  h.add({1, 2, 3});
  std::vector<float> out(2 * 8);
  SequenceBatch b = h.batch();
  std::vector<uint32_t> decreasing{0, 3, 2};
  b.users = 2;
  b.offsets = decreasing.data();
  try {
    encoder.encode(b, out.data(), 1);
    FAIL() << "decreasing offsets accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
  }
  std::vector<uint32_t> past{0, 4};
  b = h.batch();
  b.offsets = past.data();
  EXPECT_THROW(encoder.encode(b, out.data(), 1), Error);
  h.times[1] = std::numeric_limits<double>::quiet_NaN();
  try {
    encoder.encode(h.batch(), out.data(), 1);
    FAIL() << "NaN time accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NonFinite);
  }
}

TEST(SequenceEncoder, RejectsInconsistentModels) {
  SequenceModel m = smallHstu();
  m.hstuLayers[1].uvqk.weight.pop_back();
  EXPECT_THROW(SequenceEncoder{m}, Error);
  m = smallHstu();
  m.longProj.bias[3] = std::nanf("");
  EXPECT_THROW(SequenceEncoder{m}, Error);
  m = smallHstu();
  m.featureWeight = std::vector<float>(3 * m.dim, 0.0f);
  m.featuresPerItem = 1;
  m.featureIds = std::vector<int32_t>(m.numItems + 1, 3);  // feature row 3 of 3 rows: out of range
  EXPECT_THROW(SequenceEncoder{m}, Error);
}

TEST(SequenceEncoder, UnknownRowsAreSkippedAndEmptyHistoriesGiveOneFiniteQuery) {
  SequenceEncoder encoder(smallHstu());
  Histories withUnknown, clean, empty;
  withUnknown.add({4, 0, 7, 21, -3, 9});  // 0, 21 (> numItems) and -3 are unknown
  clean.items = {4, 7, 9};
  clean.actions = {0, 2, 2};  // the actions and times of the known events
  clean.times = {1000, 1000 + 37.0 * 4, 1000 + 37.0 * 25};
  clean.offsets = {0, 3};
  EXPECT_EQ(encode(encoder, withUnknown), encode(encoder, clean));
  empty.add({});
  empty.add({0, 99});
  const std::vector<float> q = encode(encoder, empty);
  for (float v : q) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(std::vector<float>(q.begin(), q.begin() + 16), std::vector<float>(q.begin() + 16, q.end()));
}

// encodeOnGpu: where a CUDA device is usable, the CPU's queries to 1e-4 relative (every history
// shape: empty, unknown-only, 1 and 2 events, maxLen and past it); elsewhere Error(NoDevice), for
// HSTU and SASRec alike, before any work.
TEST(SequenceEncoder, OnTheGpuEqualsTheCpuOrSaysThereIsNoDevice) {
  SequenceEncoder encoder(smallHstu());
  Histories h;
  for (const auto& rows : std::vector<std::vector<int32_t>>{{}, {0, 99}, {5}, {5, 6}, {1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}) h.add(rows);
  std::vector<float> onGpu(encode(encoder, h).size());
  if (gpu::deviceCount() == 0) {
    try {
      encoder.encodeOnGpu(h.batch(), onGpu.data(), 0, 1);
      FAIL() << "encodeOnGpu ran without a device";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::NoDevice) << e.what();
    }
    return;
  }
  encoder.encodeOnGpu(h.batch(), onGpu.data(), 0, 1);
  const std::vector<float> cpu = encode(encoder, h);
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(onGpu[i], cpu[i], 1e-4f * std::max(1.0f, std::fabs(cpu[i]))) << "value " << i;
}

TEST(SequenceSessionCache, GrowingHistoriesEqualFullRunsBitForBit) {
  auto encoder = std::make_shared<const SequenceEncoder>(smallHstu());
  SequenceSessionCache cache(encoder, 1 << 20);
  const std::vector<int32_t> rows{3, 5, 8, 1, 20, 11, 6, 2, 9};  // past maxLen 6: the window slides
  for (size_t k = 1; k <= rows.size(); ++k) {
    Histories h;
    h.add(std::vector<int32_t>(rows.begin(), rows.begin() + k));
    std::vector<float> out(2 * 8);
    cache.encode({"u"}, h.batch(), out.data(), 1);
    EXPECT_EQ(out, encode(*encoder, h)) << k << " events";
  }
  const SessionCacheStats s = cache.stats();
  EXPECT_EQ(s.reusedEvents, 0 + 1 + 2 + 3 + 4 + 5);  // then 3 slides, each a full window
  EXPECT_EQ(s.encodedEvents, 6 + 3 * 6);
  EXPECT_EQ(s.sessions, 1);
}

TEST(SequenceSessionCache, KeepsTheMostRecentlyUsedWithinItsBudget) {
  auto encoder = std::make_shared<const SequenceEncoder>(smallHstu());
  Histories h;
  h.add({1, 2, 3});
  std::vector<float> out(2 * 8);
  SequenceSessionCache probe(encoder, 1 << 20);
  probe.encode({"a"}, h.batch(), out.data(), 1);
  const auto one = static_cast<size_t>(probe.stats().bytes);
  SequenceSessionCache cache(encoder, one * 2 + one / 2);
  for (const char* user : {"a", "b", "a", "c"}) cache.encode({user}, h.batch(), out.data(), 1);  // b is least recent when c comes
  SessionCacheStats s = cache.stats();
  EXPECT_EQ(s.sessions, 2);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_LE(s.bytes, s.maxBytes);
  const int64_t reused = s.reusedEvents;
  cache.encode({"a"}, h.batch(), out.data(), 1);  // kept: all 3 reused
  EXPECT_EQ(cache.stats().reusedEvents, reused + 3);
  cache.encode({"b"}, h.batch(), out.data(), 1);  // evicted: encoded again
  EXPECT_EQ(cache.stats().reusedEvents, reused + 3);
  cache.forget({"a", "b", "c"});
  EXPECT_EQ(cache.stats().sessions, 0);
  EXPECT_EQ(cache.stats().bytes, 0);
  SequenceSessionCache none(encoder, 0);
  none.encode({"a"}, h.batch(), out.data(), 1);
  EXPECT_EQ(none.stats().sessions, 0);
}

TEST(SequenceSessionCache, PlansOnlyTheEventsItWillEncode) {
  auto encoder = std::make_shared<const SequenceEncoder>(smallHstu());
  const double perEvent = 2 * (5.0 * 8 * 8 + 2.0 * 6 * 8);  // 2 layers, d 8, maxLen 6
  EXPECT_EQ(encoder->macsPerEvent(), perEvent);
  SequenceSessionCache cache(encoder, 1 << 20);
  Histories first, grown, edited;
  first.add({3, 5, 8});
  grown.add({3, 5, 8, 0, 1, 99});  // one new known event; the unknown rows 0 and 99 count for nothing
  edited.add({3, 6, 8, 1});        // an earlier event changed: all four again
  EXPECT_EQ(cache.plannedMacs({"u"}, first.batch()), 3 * perEvent);
  std::vector<float> out(2 * 8);
  cache.encode({"u"}, first.batch(), out.data(), 1);
  EXPECT_EQ(cache.plannedMacs({"u"}, grown.batch()), 1 * perEvent);
  EXPECT_EQ(cache.plannedMacs({"v"}, grown.batch()), 4 * perEvent);  // no session
  EXPECT_EQ(cache.plannedMacs({"u"}, edited.batch()), 4 * perEvent);
  Histories nine;
  for (int u = 0; u < 9; ++u) nine.add({3, 5, 8});
  EXPECT_TRUE(std::isinf(cache.plannedMacs(std::vector<std::string>(9, "u"), nine.batch())));  // many users: a worker, unplanned
  const SessionCacheStats before = cache.stats();
  cache.encodeHere({"u"}, grown.batch(), out.data());
  EXPECT_EQ(out, encode(*encoder, grown));
  EXPECT_EQ(cache.stats().encodedEvents - before.encodedEvents, 1);
  EXPECT_EQ(cache.stats().reusedEvents - before.reusedEvents, 3);
}

}  // namespace
