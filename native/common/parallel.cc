#include "common/parallel.h"

#include "common/error.h"

namespace cangen {

namespace {
std::atomic<int> activeThreads{0};
std::atomic<int> peakThreads{0};
std::atomic<int> faultCountdown{0};  // > 0: armed (see testing::injectFaultInRegion)
}  // namespace

void FirstFailure::record(std::exception_ptr failure) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!first_) first_ = failure;
  failed_.store(true, std::memory_order_relaxed);
}

void FirstFailure::injectedFault() {
  if (faultCountdown.load(std::memory_order_relaxed) <= 0) return;
  if (faultCountdown.fetch_sub(1) == 1) throw Error(ErrorCode::Internal, "injected fault");
}

RegionThread::RegionThread() {
  const int now = activeThreads.fetch_add(1) + 1;
  int peak = peakThreads.load(std::memory_order_relaxed);
  while (now > peak && !peakThreads.compare_exchange_weak(peak, now)) {
  }
}

RegionThread::~RegionThread() { activeThreads.fetch_sub(1); }

RegionThreadCounts regionThreadCounts(bool resetPeak) {
  RegionThreadCounts counts{activeThreads.load(), peakThreads.load()};
  if (resetPeak) peakThreads.store(counts.active);
  return counts;
}

namespace testing {
void injectFaultInRegion(int nth) { faultCountdown.store(nth); }
}  // namespace testing

}  // namespace cangen
