// SequenceEncoder::encodeOnGpu, with sequence_gpu.cu's host code and sequence_kernel.cuh's kernels
// run on the CPU stand-in of cuda_runtime.h here, against SequenceEncoder::encode, to 1e-4
// relative: random HSTU and SASRec models (times, actions, short window, long term, interests,
// windows past one key tile, dims that leave partial linear tiles), histories of length 0, 1, 2,
// L-1, L and past L, unknown-only and mixed, with and without actions and times.
// Built and run by scripts/sequence-gpu-emulation.sh; arguments: case numbers (default all).
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda_runtime.h"
#include "sequence/sequence_encoder.h"

namespace cangen::gpu {  // what cuda/gpu_flat_search.cu gives the real build
int deviceCount() { return 1; }
std::string describeDevice(int) { return "CPU emulation"; }
}  // namespace cangen::gpu

namespace {

using namespace cangen;

std::vector<float> normal(size_t n, std::mt19937& rng, float scale = 0.3f) {
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

LinearWeights linear(int in, int out, std::mt19937& rng) {
  return {in, out, normal(static_cast<size_t>(in) * out, rng, 1.0f / std::sqrt(static_cast<float>(in))), normal(out, rng)};
}

struct Case {
  bool sasrec;
  int dim, heads, maxLen, layers, window;
  bool times;
  int actions;
  bool longTerm;
  int interests;
};

SequenceModel modelOf(const Case& c, int items, unsigned seed) {
  std::mt19937 rng(seed);
  SequenceModel m;
  m.kind = c.sasrec ? SequenceKind::SasRec : SequenceKind::Hstu;
  m.dim = c.dim, m.heads = c.heads, m.maxLen = c.maxLen, m.shortWindow = c.window, m.timeBuckets = 16, m.useTimes = c.times;
  m.longTerm = c.longTerm, m.interests = c.interests, m.normalizeQuery = c.interests > 1, m.numItems = items, m.numActions = c.actions;
  const int d = c.dim;
  m.itemIdWeight = normal(static_cast<size_t>(items + 1) * d, rng);
  if (c.actions) m.actionWeight = normal(static_cast<size_t>(c.actions + 1) * d, rng);
  if (c.sasrec) {
    m.position = normal(static_cast<size_t>(c.maxLen) * d, rng);
    for (int l = 0; l < c.layers; ++l) {
      m.sasrecBlocks.push_back({normal(d, rng), normal(d, rng), linear(d, 3 * d, rng), linear(d, d, rng), normal(d, rng), normal(d, rng),
                                linear(d, 4 * d, rng), linear(4 * d, d, rng)});
    }
  } else {
    for (int l = 0; l < c.layers; ++l) m.hstuLayers.push_back({linear(d, 4 * d, rng), linear(d, d, rng), normal(c.maxLen, rng), normal(17, rng)});
  }
  m.finalNormGamma = normal(d, rng), m.finalNormBeta = normal(d, rng);
  if (c.longTerm) m.longScore = normal(d, rng), m.longProj = linear(d, d, rng), m.fuseGate = linear(2 * d, d, rng);
  if (c.interests > 1) m.interestProj = linear(d, c.interests * d, rng);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Case> cases = {
      {false, 32, 2, 12, 2, 0, true, 3, false, 1},  {false, 24, 3, 20, 3, 5, false, 0, true, 3},
      {false, 64, 4, 150, 2, 0, true, 2, false, 1}, {false, 100, 1, 33, 1, 0, true, 0, false, 1},
      {true, 16, 2, 10, 2, 0, false, 2, false, 1},  {true, 24, 3, 140, 2, 4, false, 0, true, 2},
      {true, 40, 1, 20, 1, 0, false, 0, false, 1},
  };
  std::set<int> chosen;
  for (int i = 1; i < argc; ++i) chosen.insert(std::stoi(argv[i]));
  const int items = 40;
  int failures = 0;
  for (int ci = 0; ci < static_cast<int>(cases.size()); ++ci) {
    if (!chosen.empty() && !chosen.count(ci)) continue;
    const Case& c = cases[ci];
    SequenceEncoder encoder(modelOf(c, items, 100 + ci));
    std::mt19937 rng(7 + ci);
    const std::vector<int> lengths = {0, 1, 2, c.maxLen - 1, c.maxLen, c.maxLen + 7, 3, 5, 9};  // user 6: unknown ids only
    std::vector<uint32_t> offsets{0};
    std::vector<int32_t> rows, actions;
    std::vector<double> times;
    double t = 1.7e9;
    for (size_t u = 0; u < lengths.size(); ++u) {
      for (int k = 0; k < lengths[u]; ++k) {
        int row = 1 + static_cast<int>(rng() % items);
        if (u == 6 || rng() % 7 == 0) row = rng() % 2 ? 0 : items + 3;
        rows.push_back(row);
        actions.push_back(static_cast<int>(rng() % (c.actions + 3)) - 1);
        t += rng() % 10 == 0 ? -static_cast<double>(rng() % 100) : std::exp(static_cast<double>(rng() % 1000) / 1000 * std::log(2.6e6));
        times.push_back(t);
      }
      offsets.push_back(static_cast<uint32_t>(rows.size()));
    }
    for (int variant = 0; variant < 4; ++variant) {
      SequenceBatch b;
      b.users = static_cast<int64_t>(lengths.size());
      b.offsets = offsets.data();
      b.events = rows.size();
      b.items = rows.data();
      b.actions = variant & 1 ? actions.data() : nullptr;
      b.times = variant & 2 ? times.data() : nullptr;
      const size_t n = static_cast<size_t>(b.users) * c.interests * c.dim;
      std::vector<float> cpu(n), gpu(n, NAN);
      encoder.encode(b, cpu.data(), 1);
      const long before = cuda_emulation::launches;
      encoder.encodeOnGpu(b, gpu.data(), 0, 1);
      double worst = 0;
      for (size_t q = 0; q < n / c.dim; ++q) {
        double scale = 0, diff = 0;
        for (int k = 0; k < c.dim; ++k) {
          const float want = cpu[q * c.dim + k], got = gpu[q * c.dim + k];
          scale = std::max(scale, static_cast<double>(std::fabs(want)));
          diff = std::isfinite(got) ? std::max(diff, static_cast<double>(std::fabs(got - want))) : INFINITY;
        }
        worst = std::max(worst, diff / std::max(scale, 1e-30));
      }
      std::printf("case %d (%s) %s actions, %s times: max relative error %.2e (%ld launches)\n", ci, c.sasrec ? "SASRec" : "HSTU",
                  variant & 1 ? "with" : "without", variant & 2 ? "with" : "without", worst, cuda_emulation::launches - before);
      std::fflush(stdout);
      if (!(worst <= 1e-4)) ++failures;
    }
  }
  std::printf("%s\n", failures ? "FAILED" : "every case equals the CPU path");
  return failures ? 1 : 0;
}
