// cangen_gpu_check: correctness checks and timings of the CUDA exact search (cuda/gpu_flat_search.h).
//
//   cangen_gpu_check [--checks-only] [--timing-only] [--device N] [--json PATH]
//
// Checks: random corpora (fixed seeds) packed into panels, a float64 brute-force reference on the
// CPU, and GpuFlatSearcher compared with it rank by rank on scores (ties make slots ambiguous),
// plus: every returned slot's recomputed score, order, tie order (slot ascending), padding when
// fewer than k ads qualify, eligibility bitmaps, ascending data (every chunk beats the previous
// threshold: the worst case of the candidate buffers), all-equal scores, incremental syncs and
// argument errors. --checks-only runs the small shapes only (for compute-sanitizer).
// Timings: median latency of search() (host clock around the synchronous call: uploads, kernels
// and downloads, what a caller waits for), against the memory floor (corpus bytes / measured
// device-to-device bandwidth) and the fp32 FMA ceiling measured in the same run.
// Prints PASS/FAIL lines and "N passed, M failed"; exits 1 on any failure. Without a device it
// prints "skipped: no CUDA device (<reason>)" and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "cuda/gpu_flat_search.h"
#include "flat/panels.h"
#include "tools/gpu_probe.h"

namespace {

using cangen::Error;
using cangen::ErrorCode;
using cangen::PanelView;
using cangen::gpu::GpuFlatSearcher;
using cangen::gpu::kMaxGpuK;
using Clock = std::chrono::steady_clock;

// ---- small utilities ---------------------------------------------------------------------------

struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) {  // [lo, hi)
    return lo + (hi - lo) * static_cast<float>((next() >> 40) * (1.0 / 16777216.0));
  }
};

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// Runs body(i) for i in [0, n) on all hardware threads.
void parallelFor(size_t n, const std::function<void(size_t)>& body) {
  const size_t workers = std::max<size_t>(1, std::min<size_t>(n, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = w; i < n; i += workers) body(i);
    });
  }
  for (auto& t : pool) t.join();
}

// 64-byte aligned, zero-initialised float storage (what PanelView promises).
struct AlignedFloats {
  std::unique_ptr<float, void (*)(void*)> data{nullptr, std::free};
  size_t size = 0;
  void resize(size_t n) {
    const size_t bytes = std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
    data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!data) throw std::bad_alloc();
    std::memset(data.get(), 0, bytes);
    size = n;
  }
};

// ---- corpus ------------------------------------------------------------------------------------

enum class Order { Random, Ascending, AllEqual };

struct Corpus {
  size_t n = 0;
  int dim = 0;
  std::vector<float> rows;  // n x dim, row-major (the reference reads these)
  std::vector<float> bias;  // n, or empty
  AlignedFloats panels;     // flat/panels.h layout

  // The tiny packer: every (ad, dim) through panelOffset; unused lanes stay zero.
  void pack() {
    panels.resize(cangen::panelCount(n) * cangen::panelFloats(dim));
    for (size_t a = 0; a < n; ++a) {
      for (int j = 0; j < dim; ++j) panels.data.get()[cangen::panelOffset(a, dim, j)] = rows[a * dim + j];
    }
  }
  PanelView view() const {
    PanelView v;
    v.panels = panels.data.get();
    v.bias = bias.empty() ? nullptr : bias.data();
    v.count = n;
    v.dim = dim;
    return v;
  }
};

// Direction shared by ascending ads and their queries: positive entries, so scores rise with t.
std::vector<float> ascendingDirection(int dim) {
  Rng rng(777);
  std::vector<float> u(dim);
  for (auto& x : u) x = rng.uniform(0.5f, 1.0f);
  return u;
}

// Fills rows (and bias) [from, n) of the corpus; rows and bias before `from` are kept.
void fillRows(Corpus& c, size_t from, Order order, bool withBias, uint64_t seed) {
  c.rows.resize(c.n * c.dim);
  if (withBias) c.bias.resize(c.n);
  else c.bias.clear();
  Rng rng(seed);
  const std::vector<float> u = ascendingDirection(c.dim);
  for (size_t a = from; a < c.n; ++a) {
    const float t = static_cast<float>(a + 1) / static_cast<float>(c.n);
    for (int j = 0; j < c.dim; ++j) {
      float v = 0.0f;
      if (order == Order::Random) v = rng.uniform(-1.0f, 1.0f);
      else if (order == Order::Ascending) v = t * u[j];
      c.rows[a * c.dim + j] = v;
    }
    if (withBias) c.bias[a] = order == Order::Random ? rng.uniform(-1.0f, 1.0f) : (order == Order::Ascending ? t : 0.0f);
  }
}

Corpus makeCorpus(size_t n, int dim, Order order, bool withBias, uint64_t seed) {
  Corpus c;
  c.n = n;
  c.dim = dim;
  fillRows(c, 0, order, withBias, seed);
  c.pack();
  return c;
}

std::vector<float> makeQueries(int nq, int dim, Order order, uint64_t seed) {
  std::vector<float> q(static_cast<size_t>(nq) * dim);
  Rng rng(seed);
  const std::vector<float> u = ascendingDirection(dim);
  for (int i = 0; i < nq; ++i) {
    for (int j = 0; j < dim; ++j) {
      q[static_cast<size_t>(i) * dim + j] =
          order == Order::Random ? rng.uniform(-1.0f, 1.0f) : u[j] * (1.0f + 0.1f * static_cast<float>(i % 7));
    }
  }
  return q;
}

std::vector<uint64_t> makeBitmap(size_t n, double fraction, uint64_t seed) {
  std::vector<uint64_t> bits((n + 63) / 64, 0);
  Rng rng(seed);
  for (size_t a = 0; a < n; ++a) {
    if (rng.uniform(0.0f, 1.0f) < fraction) bits[a / 64] |= uint64_t{1} << (a % 64);
  }
  return bits;
}

bool bitSet(const std::vector<uint64_t>& bits, size_t a) { return (bits[a / 64] >> (a % 64)) & 1u; }

double refScore(const Corpus& c, const float* query, size_t a) {
  double s = c.bias.empty() ? 0.0 : static_cast<double>(c.bias[a]);
  const float* row = c.rows.data() + a * c.dim;
  for (int j = 0; j < c.dim; ++j) s += static_cast<double>(query[j]) * static_cast<double>(row[j]);
  return s;
}

// ---- verification -----------------------------------------------------------------------------

// Which queries the reference checks: all of them for small problems, else a spread.
std::vector<int> queriesToCheck(int nq, size_t n, int dim) {
  const double work = static_cast<double>(nq) * static_cast<double>(n) * dim;
  const int limit = work <= 3e8 ? nq : std::max(1, std::min(nq, n >= 1000000 ? 3 : 8));
  std::vector<int> out;
  if (limit >= nq) {
    for (int q = 0; q < nq; ++q) out.push_back(q);
  } else {
    for (int i = 0; i < limit; ++i) out.push_back(static_cast<int>(static_cast<int64_t>(i) * (nq - 1) / std::max(1, limit - 1)));
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  return out;
}

// "" when the GPU results for the checked queries agree with the float64 reference.
std::string verify(const Corpus& c, const std::vector<float>& queries, int nq, int k,
                   const std::vector<uint64_t>* eligible, const std::vector<int64_t>& slots,
                   const std::vector<float>& scores) {
  const std::vector<int> check = queriesToCheck(nq, c.n, c.dim);
  std::vector<std::string> errors(check.size());
  parallelFor(check.size(), [&](size_t ci) {
    const int q = check[ci];
    const float* query = queries.data() + static_cast<size_t>(q) * c.dim;
    std::vector<double> ref;
    ref.reserve(c.n);
    for (size_t a = 0; a < c.n; ++a) {
      if (eligible == nullptr || bitSet(*eligible, a)) ref.push_back(refScore(c, query, a));
    }
    const size_t m = std::min(ref.size(), static_cast<size_t>(k));
    std::partial_sort(ref.begin(), ref.begin() + m, ref.end(), std::greater<double>());
    std::vector<char> seen(c.n, 0);
    std::ostringstream why;
    for (int r = 0; r < k; ++r) {
      const size_t at = static_cast<size_t>(q) * k + r;
      const int64_t slot = slots[at];
      const float score = scores[at];
      if (static_cast<size_t>(r) >= m) {
        if (slot != -1 || !(std::isinf(score) && score < 0)) {
          why << "query " << q << " rank " << r << ": expected padding (-1, -inf), got (" << slot << ", " << score << ")";
          break;
        }
        continue;
      }
      if (slot < 0 || static_cast<size_t>(slot) >= c.n) {
        why << "query " << q << " rank " << r << ": slot " << slot << " out of range (n " << c.n << ", expected " << m << " results)";
        break;
      }
      if (eligible != nullptr && !bitSet(*eligible, static_cast<size_t>(slot))) {
        why << "query " << q << " rank " << r << ": slot " << slot << " is not eligible";
        break;
      }
      if (seen[slot]) {
        why << "query " << q << " rank " << r << ": slot " << slot << " returned twice";
        break;
      }
      seen[slot] = 1;
      const double tol = 1e-3 * std::max(1.0, std::fabs(ref[r]));
      if (std::fabs(static_cast<double>(score) - ref[r]) > tol) {
        why << "query " << q << " rank " << r << ": score " << score << ", reference " << ref[r];
        break;
      }
      const double recomputed = refScore(c, query, static_cast<size_t>(slot));
      if (std::fabs(recomputed - static_cast<double>(score)) > tol) {
        why << "query " << q << " rank " << r << ": slot " << slot << " has score " << recomputed << ", returned " << score;
        break;
      }
      if (r > 0) {
        const float prev = scores[at - 1];
        if (score > prev) {
          why << "query " << q << " rank " << r << ": not descending (" << prev << " then " << score << ")";
          break;
        }
        if (score == prev && slot < slots[at - 1]) {
          why << "query " << q << " rank " << r << ": equal scores not in slot order (" << slots[at - 1] << " then " << slot << ")";
          break;
        }
      }
    }
    errors[ci] = why.str();
  });
  for (auto& e : errors) {
    if (!e.empty()) return e;
  }
  return "";
}

// ---- the check registry -------------------------------------------------------------------------

struct CheckResult {
  std::string name;
  bool pass = false;
  double ms = 0;
  std::string detail;
};

struct Checker {
  int device = 0;
  bool smallOnly = false;
  std::vector<CheckResult> results;

  void record(const std::string& name, const std::function<std::string()>& body) {
    const auto t0 = Clock::now();
    CheckResult r;
    r.name = name;
    try {
      r.detail = body();
    } catch (const Error& e) {
      r.detail = std::string("threw ") + cangen::errorCodeName(e.code()) + ": " + e.what();
    } catch (const std::exception& e) {
      r.detail = std::string("threw: ") + e.what();
    }
    r.pass = r.detail.empty();
    r.ms = msSince(t0);
    if (r.pass) std::printf("PASS %s (%.0f ms)\n", name.c_str(), r.ms);
    else std::printf("FAIL %s: %s\n", name.c_str(), r.detail.c_str());
    std::fflush(stdout);
    results.push_back(r);
  }

  // One corpus, one sync, a search for each (nq, k).
  void searchCase(const std::string& label, size_t n, int dim, Order order, bool withBias, double eligibleFraction,
                  const std::vector<int>& nqs, const std::vector<int>& ks, uint64_t seed) {
    std::unique_ptr<Corpus> corpus;
    std::unique_ptr<GpuFlatSearcher> searcher;
    std::vector<uint64_t> eligible;
    std::string setupError;
    try {
      corpus = std::make_unique<Corpus>(makeCorpus(n, dim, order, withBias, seed));
      if (eligibleFraction > 0) eligible = makeBitmap(n, eligibleFraction, seed + 1);
      searcher = std::make_unique<GpuFlatSearcher>(device);
      searcher->sync(corpus->view(), 0);
    } catch (const std::exception& e) {
      setupError = std::string("setup threw: ") + e.what();
    }
    const int maxNq = *std::max_element(nqs.begin(), nqs.end());
    const std::vector<float> queries = makeQueries(maxNq, dim, order, seed + 2);
    for (int nq : nqs) {
      for (int k : ks) {
        std::ostringstream name;
        name << label << " n=" << n << " dim=" << dim << " nq=" << nq << " k=" << k;
        record(name.str(), [&]() -> std::string {
          if (!setupError.empty()) return setupError;
          std::vector<int64_t> slots(static_cast<size_t>(nq) * k, -2);
          std::vector<float> scores(static_cast<size_t>(nq) * k, 0.0f);
          searcher->search(queries.data(), nq, k, eligible.empty() ? nullptr : eligible.data(), slots.data(), scores.data());
          return verify(*corpus, queries, nq, k, eligible.empty() ? nullptr : &eligible, slots, scores);
        });
      }
    }
  }

  // Sync, then change the tail and grow, then shrink, then drop the bias: each search must see
  // exactly the latest view although only the dirty part was announced.
  void incrementalCase() {
    record("incremental sync (tail changed, grown, shrunk, bias dropped)", [&]() -> std::string {
      const int dim = 96;
      const int nq = 8;
      const int k = 50;
      Corpus c = makeCorpus(20011, dim, Order::Random, true, 101);
      const std::vector<float> queries = makeQueries(nq, dim, Order::Random, 102);
      GpuFlatSearcher searcher(device);
      std::vector<int64_t> slots(nq * k);
      std::vector<float> scores(nq * k);
      auto step = [&](const char* what, size_t firstDirty) -> std::string {
        c.pack();
        searcher.sync(c.view(), firstDirty);
        searcher.search(queries.data(), nq, k, nullptr, slots.data(), scores.data());
        const std::string e = verify(c, queries, nq, k, nullptr, slots, scores);
        return e.empty() ? "" : std::string(what) + ": " + e;
      };
      std::string e = step("initial", 0);
      if (!e.empty()) return e;
      // Same count, new rows from ad 10007 on (not a panel boundary) that win: a partial upload
      // into the existing buffers.
      fillRows(c, 10007, Order::Random, true, 103);
      for (size_t a = 10007; a < c.n; ++a) c.rows[a * dim] *= 3.0f;
      if (!(e = step("tail changed", 10007)).empty()) return e;
      // Grown by 10000 ads that win (the device buffers are reallocated).
      c.n = 30011;
      fillRows(c, 20011, Order::Random, true, 104);
      for (size_t a = 20011; a < c.n; ++a) c.rows[a * dim] *= 5.0f;
      if (!(e = step("grown", 20011)).empty()) return e;
      // Shrink: nothing before the new count changed.
      c.n = 15000;
      c.rows.resize(c.n * dim);
      c.bias.resize(c.n);
      if (!(e = step("shrunk", c.n)).empty()) return e;
      // Without bias (a full upload whatever firstDirty says).
      c.bias.clear();
      if (!(e = step("bias dropped", c.n)).empty()) return e;
      return "";
    });
  }

  void argumentCase() {
    record("argument errors (nq, k, order of calls, device)", [&]() -> std::string {
      auto expectCode = [](ErrorCode code, const std::function<void()>& f, const char* what) -> std::string {
        try {
          f();
        } catch (const Error& e) {
          if (e.code() == code) return "";
          return std::string(what) + ": wrong code " + cangen::errorCodeName(e.code()) + " (" + e.what() + ")";
        }
        return std::string(what) + ": did not throw";
      };
      GpuFlatSearcher searcher(device);
      std::vector<float> q(64, 0.5f);
      std::vector<int64_t> slots(2 * (kMaxGpuK + 1));
      std::vector<float> scores(2 * (kMaxGpuK + 1));
      std::string e;
      if (!(e = expectCode(ErrorCode::InvalidArgument, [&] { searcher.search(q.data(), 1, 10, nullptr, slots.data(), scores.data()); }, "search before sync")).empty()) return e;
      Corpus c = makeCorpus(1000, 64, Order::Random, false, 5);
      searcher.sync(c.view(), 0);
      if (!(e = expectCode(ErrorCode::InvalidArgument, [&] { searcher.search(q.data(), 1, 0, nullptr, slots.data(), scores.data()); }, "k = 0")).empty()) return e;
      if (!(e = expectCode(ErrorCode::InvalidArgument, [&] { searcher.search(q.data(), 1, kMaxGpuK + 1, nullptr, slots.data(), scores.data()); }, "k > kMaxGpuK")).empty()) return e;
      if (!(e = expectCode(ErrorCode::InvalidArgument, [&] { searcher.search(q.data(), 0, 10, nullptr, slots.data(), scores.data()); }, "nq = 0")).empty()) return e;
      if (!(e = expectCode(ErrorCode::NoDevice, [&] { GpuFlatSearcher bad(cangen::gpu::deviceCount() + 7); }, "device out of range")).empty()) return e;
      // Still usable after the errors.
      searcher.search(q.data(), 1, 10, nullptr, slots.data(), scores.data());
      std::vector<int64_t> s1(slots.begin(), slots.begin() + 10);
      std::vector<float> sc1(scores.begin(), scores.begin() + 10);
      return verify(c, q, 1, 10, nullptr, s1, sc1);
    });
  }

  void run() {
    // Small shapes (also the --checks-only set, sized for compute-sanitizer).
    searchCase("random", 1000, 64, Order::Random, false, 0, {1, 16}, {1, 10, 100, 4096}, 11);
    searchCase("random+bias", 1000, 100, Order::Random, true, 0, {256}, {10, 1000}, 12);
    searchCase("random+bias", 20011, 100, Order::Random, true, 0, {16}, {1, 10, 100, 4096}, 13);
    searchCase("large k", 20011, 128, Order::Random, false, 0, {1, 3}, {20000, kMaxGpuK}, 14);
    searchCase("eligible 10%", 20011, 64, Order::Random, true, 0.1, {16}, {10, 4096}, 15);
    searchCase("none eligible", 1000, 64, Order::Random, false, 1e-12, {4}, {10}, 18);
    searchCase("ascending", 20011, 96, Order::Ascending, true, 0, {16}, {10, 4096}, 16);
    searchCase("all equal", 20011, 64, Order::AllEqual, false, 0, {4}, {100}, 17);
    incrementalCase();
    argumentCase();
    if (smallOnly) return;
    // The shapes of the brief.
    searchCase("random+bias", 100003, 100, Order::Random, true, 0, {1, 16, 256}, {1, 10, 100, 4096}, 21);
    searchCase("k near n", 100003, 64, Order::Random, false, 0, {4}, {kMaxGpuK}, 22);
    searchCase("eligible 10%", 100003, 64, Order::Random, false, 0.1, {16}, {100, 20000}, 23);
    searchCase("random", 1000000, 128, Order::Random, false, 0, {1, 16, 256}, {10, 100, 4096}, 24);
    searchCase("ascending", 1000000, 64, Order::Ascending, false, 0, {16, 256}, {100, 4096}, 25);
    searchCase("all equal", 1000000, 64, Order::AllEqual, false, 0, {16}, {4096}, 26);
  }
};

// ---- timings -----------------------------------------------------------------------------------

struct TimingRow {
  size_t n;
  int dim, nq, k;
  double medianMs, minMs, floorMs, gbps, gflops, bwFraction, flopFraction;
  int reps;
};

struct Timings {
  cangen::tools::DeviceCeilings ceilings;
  std::vector<TimingRow> rows;
  std::vector<std::string> skipped;
  std::vector<std::string> syncLines;
};

Timings runTimings(int device) {
  Timings t;
  t.ceilings = cangen::tools::measureCeilings(device);
  std::printf("\nceilings: device-to-device copy %.0f GB/s (%zu MiB buffer), fp32 FMA %.0f GFLOP/s\n",
              t.ceilings.copyGBps, t.ceilings.copyBytes >> 20, t.ceilings.fmaGflops);
  std::printf("%9s %4s %4s %5s %10s %10s %10s %8s %6s %9s %6s\n", "n", "dim", "nq", "k", "median_ms", "min_ms",
              "floor_ms", "GB/s", "%bw", "GFLOP/s", "%fma");
  const std::vector<size_t> ns = {1000000, 10000000};
  const std::vector<int> dims = {64, 128};
  const std::vector<int> nqs = {1, 16, 256};
  const std::vector<int> ks = {10, 100, 1000};
  for (size_t n : ns) {
    for (int dim : dims) {
      const size_t corpusBytes = n * static_cast<size_t>(dim) * sizeof(float);
      const size_t freeBytes = cangen::tools::freeDeviceBytes(device);
      if (corpusBytes * 3 / 2 + (size_t{3} << 30) > freeBytes) {
        std::ostringstream s;
        s << "n=" << n << " dim=" << dim << ": skipped, " << (corpusBytes >> 20) << " MiB corpus vs " << (freeBytes >> 20) << " MiB free";
        t.skipped.push_back(s.str());
        std::printf("%s\n", s.str().c_str());
        continue;
      }
      // Generate straight into the panel layout (no row copy needed: there is no reference here).
      Corpus c;
      c.n = n;
      c.dim = dim;
      c.panels.resize(cangen::panelCount(n) * cangen::panelFloats(dim));
      {
        const size_t total = n * dim;  // only the first n ads' worth of lanes matter
        const size_t perThread = 1 << 22;
        parallelFor((total + perThread - 1) / perThread, [&](size_t block) {
          Rng rng(1000 + block);
          const size_t end = std::min(total, (block + 1) * perThread);
          for (size_t i = block * perThread; i < end; ++i) {
            const size_t a = i / dim;
            const int j = static_cast<int>(i % dim);
            c.panels.data.get()[cangen::panelOffset(a, dim, j)] = rng.uniform(-1.0f, 1.0f);
          }
        });
      }
      GpuFlatSearcher searcher(device);
      const auto s0 = Clock::now();
      searcher.sync(c.view(), 0);
      const double syncMs = msSince(s0);
      std::ostringstream syncLine;
      syncLine << "sync n=" << n << " dim=" << dim << ": " << syncMs << " ms (" << (corpusBytes / (syncMs * 1e-3) / 1e9) << " GB/s from pageable host memory)";
      t.syncLines.push_back(syncLine.str());
      const std::vector<float> queries = makeQueries(256, dim, Order::Random, 99);
      for (int nq : nqs) {
        for (int k : ks) {
          std::vector<int64_t> slots(static_cast<size_t>(nq) * k);
          std::vector<float> scores(static_cast<size_t>(nq) * k);
          searcher.search(queries.data(), nq, k, nullptr, slots.data(), scores.data());  // warm-up
          std::vector<double> times;
          const auto start = Clock::now();
          while (times.size() < 5 || (times.size() < 50 && msSince(start) < 1000.0)) {
            const auto t0 = Clock::now();
            searcher.search(queries.data(), nq, k, nullptr, slots.data(), scores.data());
            times.push_back(msSince(t0));
          }
          std::sort(times.begin(), times.end());
          TimingRow r{};
          r.n = n;
          r.dim = dim;
          r.nq = nq;
          r.k = k;
          r.reps = static_cast<int>(times.size());
          r.medianMs = times[times.size() / 2];
          r.minMs = times.front();
          r.floorMs = static_cast<double>(corpusBytes) / (t.ceilings.copyGBps * 1e9) * 1e3;
          r.gbps = static_cast<double>(corpusBytes) / (r.medianMs * 1e-3) / 1e9;
          r.gflops = 2.0 * nq * static_cast<double>(n) * dim / (r.medianMs * 1e-3) / 1e9;
          r.bwFraction = r.gbps / t.ceilings.copyGBps;
          r.flopFraction = r.gflops / t.ceilings.fmaGflops;
          std::printf("%9zu %4d %4d %5d %10.3f %10.3f %10.3f %8.0f %5.0f%% %9.0f %5.1f%%\n", n, dim, nq, k, r.medianMs,
                      r.minMs, r.floorMs, r.gbps, 100 * r.bwFraction, r.gflops, 100 * r.flopFraction);
          std::fflush(stdout);
          t.rows.push_back(r);
        }
      }
    }
  }
  for (auto& line : t.syncLines) std::printf("%s\n", line.c_str());
  return t;
}

// ---- output ------------------------------------------------------------------------------------

void writeJson(const std::string& path, const std::string& device, const std::string& skippedReason,
               const std::vector<CheckResult>& checks, const Timings* timings) {
  std::ofstream out(path);
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  out << "{\n  \"tool\": \"cangen_gpu_check\",\n  \"date\": \"" << date << "\",\n";
  out << "  \"device\": \"" << jsonEscape(device) << "\",\n";
  if (!skippedReason.empty()) out << "  \"skipped\": \"" << jsonEscape(skippedReason) << "\",\n";
  size_t failed = 0;
  for (auto& c : checks) failed += c.pass ? 0 : 1;
  out << "  \"checks\": {\"passed\": " << checks.size() - failed << ", \"failed\": " << failed << ", \"results\": [";
  for (size_t i = 0; i < checks.size(); ++i) {
    out << (i ? ",\n" : "\n") << "    {\"name\": \"" << jsonEscape(checks[i].name) << "\", \"pass\": "
        << (checks[i].pass ? "true" : "false") << ", \"ms\": " << checks[i].ms << ", \"detail\": \""
        << jsonEscape(checks[i].detail) << "\"}";
  }
  out << "]}";
  if (timings != nullptr) {
    out << ",\n  \"ceilings\": {\"copyGBps\": " << timings->ceilings.copyGBps << ", \"fmaGflops\": " << timings->ceilings.fmaGflops
        << ", \"copyBytes\": " << timings->ceilings.copyBytes << "},\n";
    out << "  \"timingMethod\": \"median host wall-clock of the synchronous search() call (query upload, kernels, result download)\",\n";
    out << "  \"timings\": [";
    for (size_t i = 0; i < timings->rows.size(); ++i) {
      const TimingRow& r = timings->rows[i];
      out << (i ? ",\n" : "\n") << "    {\"n\": " << r.n << ", \"dim\": " << r.dim << ", \"nq\": " << r.nq << ", \"k\": " << r.k
          << ", \"reps\": " << r.reps << ", \"medianMs\": " << r.medianMs << ", \"minMs\": " << r.minMs
          << ", \"floorMs\": " << r.floorMs << ", \"GBps\": " << r.gbps << ", \"bwFraction\": " << r.bwFraction
          << ", \"GFLOPs\": " << r.gflops << ", \"flopFraction\": " << r.flopFraction
          << ", \"qps\": " << (r.nq / (r.medianMs * 1e-3)) << "}";
    }
    out << "],\n  \"timingSkipped\": [";
    for (size_t i = 0; i < timings->skipped.size(); ++i) out << (i ? ", " : "") << "\"" << jsonEscape(timings->skipped[i]) << "\"";
    out << "],\n  \"sync\": [";
    for (size_t i = 0; i < timings->syncLines.size(); ++i) out << (i ? ", " : "") << "\"" << jsonEscape(timings->syncLines[i]) << "\"";
    out << "]";
  }
  out << "\n}\n";
  std::printf("wrote %s\n", path.c_str());
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--checks-only] [--timing-only] [--device N] [--json PATH]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool checksOnly = false;
  bool timingOnly = false;
  int device = 0;
  std::string jsonPath;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--checks-only") checksOnly = true;
    else if (arg == "--timing-only") timingOnly = true;
    else if (arg == "--device" && i + 1 < argc) device = std::atoi(argv[++i]);
    else if (arg == "--json" && i + 1 < argc) jsonPath = argv[++i];
    else return usage(argv[0]);
  }
  if (checksOnly && timingOnly) return usage(argv[0]);

  const std::string description = cangen::gpu::describeDevice(device);
  if (cangen::gpu::deviceCount() <= device) {
    std::printf("skipped: no CUDA device (%s)\n", description.c_str());
    if (!jsonPath.empty()) writeJson(jsonPath, "", description, {}, nullptr);
    return 0;
  }
  std::printf("device %d: %s\n", device, description.c_str());

  Checker checker;
  checker.device = device;
  checker.smallOnly = checksOnly;
  if (!timingOnly) checker.run();

  std::unique_ptr<Timings> timings;
  std::string timingError;
  if (!checksOnly) {
    try {
      timings = std::make_unique<Timings>(runTimings(device));
    } catch (const std::exception& e) {
      timingError = e.what();
      std::printf("FAIL timings: %s\n", e.what());
    }
  }
  if (!jsonPath.empty()) writeJson(jsonPath, description, "", checker.results, timings.get());

  size_t passed = timings ? 1 : 0;
  size_t failed = timingError.empty() ? 0 : 1;
  for (auto& r : checker.results) (r.pass ? passed : failed) += 1;
  std::printf("%zu passed, %zu failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
