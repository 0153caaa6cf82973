#include "system_binding.h"

#include <memory>
#include <utility>

#include "arrays.h"
#include "promise_worker.h"
#include "ann/hnsw_search.h"
#include "common/limits.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "system/build_info.h"
#include "system/ceilings.h"

namespace cangen::bindings {

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BuildInfo b = buildInfo();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", b.version);
  out.Set("faissVersion", b.faissVersion);
  out.Set("faissSimd", b.faissSimd);
  out.Set("scanSimd", b.scanSimd);
  out.Set("cudaCompiled", b.cudaCompiled);
  out.Set("cudaDevices", b.cudaDevices);
  out.Set("cudaDevice", b.cudaDevice);
  out.Set("threads", b.threads);
  out.Set("threadSource", b.threadSource);
  out.Set("affinityCpus", b.affinityCpus);
  out.Set("cgroupCpus", b.cgroupCpus);
  out.Set("compiler", b.compiler);
  return out;
}

// limits(resetPeak: boolean): the process-wide limits and what is in use now.
Napi::Value LimitsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RegionThreadCounts counts = regionThreadCounts(info[0].ToBoolean());
  Napi::Object out = Napi::Object::New(env);
  out.Set("threads", threadBudget());
  out.Set("resultBytes", static_cast<double>(resultBudgetBytes()));
  out.Set("activeThreads", counts.active);
  out.Set("peakThreads", counts.peak);
  out.Set("hnswVisitedBytes", static_cast<double>(hnswVisitedBytesKept()));
  return out;
}

// setLimits(threads (0: detected, -1: unchanged), resultBytes (0: default, -1: unchanged))
Napi::Value SetLimitsJs(const Napi::CallbackInfo& info) {
  const int threads = IntArg(info[0], "threads", -1, 4096);
  if (!info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number for resultBytes");
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= -1 && bytes <= 9007199254740991.0) || bytes != static_cast<double>(static_cast<int64_t>(bytes))) {
    throw Napi::RangeError::New(info.Env(), "Expected an integer >= -1 for resultBytes");
  }
  if (threads >= 0) setThreadBudget(threads);
  if (bytes >= 0) setResultBudgetBytes(static_cast<size_t>(bytes));
  return info.Env().Undefined();
}

// measureCeilings(threads, bytes): Promise<{peakFlops, readBandwidth}>
Napi::Value MeasureCeilingsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = IntArg(info[0], "threads", 1, 4096);
  int megabytes = IntArg(info[1], "megabytes", 16, 1 << 16);
  auto measured = std::make_shared<std::pair<double, double>>();
  const double bytes = megabytes * 1048576.0;
  return (new Task(
              env, [=] { *measured = {measurePeakFlops(threads), measureReadBandwidth(threads, bytes)}; },
              [measured](Napi::Env env) -> Napi::Value {
                Napi::Object out = Napi::Object::New(env);
                out.Set("peakFlops", measured->first);
                out.Set("readBandwidth", measured->second);
                return out;
              }))
      ->Start();
}

}  // namespace cangen::bindings
