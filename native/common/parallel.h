#pragma once
// The only way cangen starts OpenMP teams. An exception escaping an OpenMP region calls
// std::terminate (the whole Node process dies), so every thread of a team runs its work inside
// FirstFailure: the first exception is kept, the team skips the work left, and it is rethrown on
// the calling thread once the region has ended, where the bindings turn it into a JS error.
// Team sizes are always explicit (num_threads), never the OpenMP global setting; callers take
// them from a ThreadLease (common/threads.h) so that concurrent calls share one budget.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace cangen {

class FirstFailure {
 public:
  // Runs `work` unless a thread of the team has failed already; never throws.
  template <typename Work>
  void run(Work&& work) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      injectedFault();
      work();
    } catch (...) {
      record(std::current_exception());
    }
  }
  // On the calling thread, after the region.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  void record(std::exception_ptr failure) noexcept;
  static void injectedFault();

  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

// Counts the threads running inside our regions (buildInfo and the budget's tests read it).
class RegionThread {
 public:
  RegionThread();
  ~RegionThread();
  RegionThread(const RegionThread&) = delete;
  RegionThread& operator=(const RegionThread&) = delete;
};
struct RegionThreadCounts {
  int active = 0;  // now
  int peak = 0;    // most at once since the last reset
};
RegionThreadCounts regionThreadCounts(bool resetPeak = false);

// body(thread, teamSize) on a team of `threads` (the calling thread is thread 0). One thread runs
// on the calling thread without a team: starting even a team of one costs about a microsecond,
// more than a tiny search's whole scan.
template <typename Body>
void parallelTeam(int threads, Body&& body) {
  FirstFailure failure;
  if (threads <= 1) {
    RegionThread counted;
    failure.run([&] { body(0, 1); });
  } else {
#pragma omp parallel num_threads(threads)
    {
      RegionThread counted;
      failure.run([&] { body(omp_get_thread_num(), omp_get_num_threads()); });
    }
  }
  failure.rethrow();
}

// body(i) for every i in [0, n), handed out `chunk` at a time to a team of up to `threads`.
// One thread (or one item) runs on the calling thread without a team.
template <typename Body>
void parallelFor(int threads, int64_t n, int chunk, Body&& body) {
  FirstFailure failure;
  if (threads <= 1 || n <= 1) {
    RegionThread counted;
    for (int64_t i = 0; i < n; ++i) failure.run([&] { body(i); });
  } else {
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, n)))
    {
      RegionThread counted;
#pragma omp for schedule(dynamic, chunk)
      for (int64_t i = 0; i < n; ++i) failure.run([&] { body(i); });
    }
  }
  failure.rethrow();
}

namespace testing {
// Makes the `nth` piece of work run by FirstFailure from now on (1 = the next) throw
// cangen::Error(Internal, "injected fault"); 0 disarms. For native tests only.
void injectFaultInRegion(int nth);
}  // namespace testing

}  // namespace cangen
