#pragma once
// The fast path for tiny calls: a call whose estimated work is below a budget runs on the main
// thread (SettledNow in promise_worker.h) instead of hopping to a libuv worker and back, which
// costs 20-100 us, more than the work itself. It must never make the event loop wait, so it is
// taken only when nothing could block it:
//   - no write to the object (or to the index a scorer is attached to) is queued or running, so
//     its shared lock is free to take (the locks are fair: a waiting write would stop new readers);
//     every write keeps a PendingWrite alive from the call until its worker has finished;
//   - a thread of the process budget is free now (ThreadLease::IfFree), which the native call
//     then nests in instead of waiting for one.
// Otherwise, and for anything over the budget, the call goes to a worker as before.
#include <cstdlib>
#include <memory>

#include "common/threads.h"

namespace cangen::bindings {

// Multiply-adds (or their equivalent) a call may cost and still run on the main thread: about
// 50 us on one core of this class of CPU (10-20 GFLOP/s single-threaded). CANGEN_INLINE_MACS
// overrides it; 0 turns the fast path off (for A/B measurements).
constexpr double kDefaultInlineMacs = 5e5;

inline double InlineMacBudget() {
  const char* env = std::getenv("CANGEN_INLINE_MACS");
  if (env == nullptr || *env == '\0') return kDefaultInlineMacs;
  const double value = std::strtod(env, nullptr);
  return value > 0 ? value : 0;
}

// Whether a call of `macs` estimated multiply-adds may run inline (never with the budget at 0).
inline bool WithinInlineBudget(double macs) {
  const double budget = InlineMacBudget();
  return budget > 0 && macs <= budget;
}

// Writes in flight on one native object. Touched only on the main thread (calls are made and
// workers are destroyed there), so a plain counter.
struct WriteGate {
  int pending = 0;
};

// Held by a write's worker (PromiseWorker::Keep) from the call until the worker is destroyed.
class PendingWrite {
 public:
  explicit PendingWrite(std::shared_ptr<WriteGate> gate) : gate_(std::move(gate)) { gate_->pending++; }
  ~PendingWrite() { gate_->pending--; }
  PendingWrite(const PendingWrite&) = delete;
  PendingWrite& operator=(const PendingWrite&) = delete;

 private:
  std::shared_ptr<WriteGate> gate_;
};

inline bool Quiet(const std::shared_ptr<WriteGate>& gate) { return gate == nullptr || gate->pending == 0; }

}  // namespace cangen::bindings
