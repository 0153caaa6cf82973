#pragma once
// One CPU thread budget for the whole process. Node runs each async call on a libuv worker
// (UV_THREADPOOL_SIZE of them, 4 by default); if each call started an OpenMP team of every core,
// four concurrent searches on a 2-CPU container would run 4 x cores threads. Instead every call
// that computes on the CPU leases its team from this budget: it gets what it asked for, capped
// by what is free, and waits only while no thread at all is free. The budget defaults to the CPUs
// this process may use: its affinity mask, lowered by the cgroup CPU quota (v2 cpu.max, v1
// cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; CANGEN_THREAD_BUDGET or setThreadBudget overrides.
//
// Lock order: a lease is taken after any index lock and held only while computing, so a call
// never waits for a lock while holding threads. A lease taken on a thread that holds one already
// (nested calls) shares the outer lease instead of waiting.
#include <optional>
#include <string>

namespace cangen {

// CPUs allowed by a cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"); none when unlimited
// or unreadable.
std::optional<double> parseCpuMax(const std::string& text);
// CPUs allowed by cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota -1: unlimited).
std::optional<double> parseCfsQuota(const std::string& quota, const std::string& period);
// The tightest CPU limit on this process's cgroup and its ancestors, found through
// `procSelfCgroup` (the text of /proc/self/cgroup) under `root` (normally /sys/fs/cgroup).
std::optional<double> cgroupCpuLimit(const std::string& root, const std::string& procSelfCgroup);

struct ThreadBudgetInfo {
  int budget = 1;          // threads all concurrent calls share
  int affinityCpus = 1;    // CPUs in this process's affinity mask
  double cgroupCpus = 0;   // the cgroup quota in CPUs (0: none)
  std::string source;      // "affinity", "cgroup", "CANGEN_THREAD_BUDGET" or "setThreadBudget"
};

ThreadBudgetInfo threadBudgetInfo();
int threadBudget();
// Overrides the budget for the process (threads >= 1); 0 goes back to the detected value.
void setThreadBudget(int threads);

// The threads a call asks for: its own setting, else its index's, else the whole budget.
int requestedThreads(int callThreads, int indexThreads);

class ThreadLease {
 public:
  // Up to `wanted` threads (<= 0: the whole budget), at least one; waits while none is free.
  explicit ThreadLease(int wanted);
  // Up to `wanted` threads if any is free now, else none (threads() == 0) without waiting: for a
  // call on the event loop's thread that would rather go to a worker than wait.
  struct IfFree {};
  ThreadLease(int wanted, IfFree);
  ~ThreadLease();
  ThreadLease(const ThreadLease&) = delete;
  ThreadLease& operator=(const ThreadLease&) = delete;
  int threads() const { return threads_; }

 private:
  void take(int wanted);
  int threads_ = 1;
  bool owner_ = false;  // false: nested in a lease this thread holds
};

// For FAISS, which sizes its teams from the OpenMP setting of the calling thread: sets it for
// one call and restores it, so a setting never carries over to the next call on this worker.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads);
  ~ScopedOmpThreads();
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int previous_;
};

}  // namespace cangen
