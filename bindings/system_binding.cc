#include "system_binding.h"

#include <memory>
#include <utility>

#include "arrays.h"
#include "promise_worker.h"
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
  out.Set("compiler", b.compiler);
  return out;
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
