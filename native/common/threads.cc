#include "common/threads.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace cangen {

namespace {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<double> positiveRatio(const std::string& quota, const std::string& period) {
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str()) return std::nullopt;
  const double p = std::strtod(period.c_str(), &end);
  if (end == period.c_str() || q <= 0 || p <= 0) return std::nullopt;
  return q / p;
}

void keepTightest(std::optional<double>& limit, std::optional<double> found) {
  if (found && (!limit || *found < *limit)) limit = found;
}

// `dir` and each of its ancestors down to `mount`, deepest first.
std::vector<std::string> dirsUpTo(const std::string& mount, const std::string& path) {
  std::vector<std::string> dirs;
  std::string p = path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  for (;;) {
    dirs.push_back(mount + p);
    const size_t slash = p.rfind('/');
    if (p.empty() || slash == std::string::npos) break;
    p.erase(slash);
  }
  return dirs;
}

int affinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1, omp_get_num_procs());
  return std::max(1, CPU_COUNT(&set));
}

ThreadBudgetInfo detect() {
  ThreadBudgetInfo info;
  info.affinityCpus = affinityCpus();
  info.budget = info.affinityCpus;
  info.source = "affinity";
  const std::optional<std::string> self = readFile("/proc/self/cgroup");
  if (self) {
    if (std::optional<double> cpus = cgroupCpuLimit("/sys/fs/cgroup", *self)) {
      info.cgroupCpus = *cpus;
      const int quota = std::max(1, static_cast<int>(std::ceil(*cpus - 1e-9)));
      if (quota < info.budget) info.budget = quota, info.source = "cgroup";
    }
  }
  if (const char* env = std::getenv("CANGEN_THREAD_BUDGET")) {
    const int n = std::atoi(env);
    if (n >= 1) info.budget = n, info.source = "CANGEN_THREAD_BUDGET";
  }
  return info;
}

struct Budget {
  std::mutex mutex;
  std::condition_variable freed;
  ThreadBudgetInfo info = detect();
  int inUse = 0;
};

Budget& budget() {
  static Budget b;
  return b;
}

thread_local int leasedHere = 0;  // threads of the lease this thread holds (0: none)

}  // namespace

std::optional<double> parseCpuMax(const std::string& text) {
  std::istringstream in(text);
  std::string quota, period;
  if (!(in >> quota >> period) || quota == "max") return std::nullopt;
  return positiveRatio(quota, period);
}

std::optional<double> parseCfsQuota(const std::string& quota, const std::string& period) {
  return positiveRatio(quota, period);  // -1 (unlimited) is not positive
}

std::optional<double> cgroupCpuLimit(const std::string& root, const std::string& procSelfCgroup) {
  std::optional<double> limit;
  std::istringstream lines(procSelfCgroup);
  for (std::string line; std::getline(lines, line);) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    if (line.compare(0, first, "0") == 0 && controllers.empty()) {  // v2: one unified hierarchy
      for (const std::string& dir : dirsUpTo(root, path)) {
        if (auto text = readFile(dir + "/cpu.max")) keepTightest(limit, parseCpuMax(*text));
      }
      continue;
    }
    std::istringstream names(controllers);
    bool cpu = false;
    for (std::string name; std::getline(names, name, ',');) cpu = cpu || name == "cpu";
    if (!cpu) continue;
    // v1: the cpu controller is mounted under its own name or joined with cpuacct. Inside a
    // container the mount is the container's own cgroup, so the host path may not exist there.
    for (const std::string mount : {root + "/" + controllers, root + "/cpu", root + "/cpu,cpuacct"}) {
      for (const std::string& dir : dirsUpTo(mount, path)) {
        auto quota = readFile(dir + "/cpu.cfs_quota_us"), period = readFile(dir + "/cpu.cfs_period_us");
        if (quota && period) keepTightest(limit, parseCfsQuota(*quota, *period));
      }
    }
  }
  return limit;
}

ThreadBudgetInfo threadBudgetInfo() {
  std::lock_guard<std::mutex> lock(budget().mutex);
  return budget().info;
}

int threadBudget() { return threadBudgetInfo().budget; }

void setThreadBudget(int threads) {
  Budget& b = budget();
  std::lock_guard<std::mutex> lock(b.mutex);
  if (threads >= 1) {
    b.info.budget = threads;
    b.info.source = "setThreadBudget";
  } else {
    b.info = detect();
  }
  b.freed.notify_all();
}

int requestedThreads(int callThreads, int indexThreads) {
  return callThreads > 0 ? callThreads : indexThreads > 0 ? indexThreads : threadBudget();
}

ThreadLease::ThreadLease(int wanted) {
  if (leasedHere > 0) {
    threads_ = wanted > 0 ? std::min(wanted, leasedHere) : leasedHere;
    return;
  }
  Budget& b = budget();
  std::unique_lock<std::mutex> lock(b.mutex);
  b.freed.wait(lock, [&] { return b.inUse < b.info.budget; });
  take(wanted);
}

ThreadLease::ThreadLease(int wanted, IfFree) {
  if (leasedHere > 0) {
    threads_ = wanted > 0 ? std::min(wanted, leasedHere) : leasedHere;
    return;
  }
  Budget& b = budget();
  std::unique_lock<std::mutex> lock(b.mutex);
  if (b.inUse >= b.info.budget) {
    threads_ = 0;
    return;
  }
  take(wanted);
}

// With the budget's mutex held and a thread free: leases up to `wanted` of the free ones.
void ThreadLease::take(int wanted) {
  Budget& b = budget();
  const int free = b.info.budget - b.inUse;
  threads_ = wanted > 0 ? std::min(wanted, free) : free;
  b.inUse += threads_;
  owner_ = true;
  leasedHere = threads_;
}

ThreadLease::~ThreadLease() {
  if (!owner_) return;
  Budget& b = budget();
  {
    std::lock_guard<std::mutex> lock(b.mutex);
    b.inUse -= threads_;
  }
  leasedHere = 0;
  b.freed.notify_all();
}

ScopedOmpThreads::ScopedOmpThreads(int threads) : previous_(omp_get_max_threads()) {
  omp_set_num_threads(std::max(threads, 1));
}

ScopedOmpThreads::~ScopedOmpThreads() { omp_set_num_threads(previous_); }

}  // namespace cangen
