#include "system_binding.h"

#include "arrays.h"
#include "promise_worker.h"
#include "system/build_info.h"
#include "system/ceilings.h"

namespace cangen::bindings {

namespace {

class CeilingsWorker : public PromiseWorker {
 public:
  CeilingsWorker(Napi::Env env, int threads, double bytes) : PromiseWorker(env), threads_(threads), bytes_(bytes) {}

 private:
  void Run() override {
    flops_ = measurePeakFlops(threads_);
    bandwidth_ = measureReadBandwidth(threads_, bytes_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("peakFlops", flops_);
    out.Set("readBandwidth", bandwidth_);
    return out;
  }

  int threads_;
  double bytes_;
  double flops_ = 0;
  double bandwidth_ = 0;
};

}  // namespace

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
  return (new CeilingsWorker(env, threads, megabytes * 1048576.0))->Start();
}

}  // namespace cangen::bindings
