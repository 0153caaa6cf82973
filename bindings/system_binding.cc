#include "system_binding.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "arrays.h"
#include "errors.h"
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
  out.Set("bf16Simd", b.bf16Simd);
  out.Set("int8Simd", b.int8Simd);
  out.Set("sequenceSimd", b.sequenceSimd);
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
  out.Set("inlineCalls", static_cast<double>(InlineCalls()));
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

// measureCeilings(threads, bytes): Promise<{peakFlops, peakBf16Flops, peakInt8Ops, readBandwidth}>
Napi::Value MeasureCeilingsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = IntArg(info[0], "threads", 1, 4096);
  int megabytes = IntArg(info[1], "megabytes", 16, 1 << 16);
  auto measured = std::make_shared<std::array<double, 4>>();
  const double bytes = megabytes * 1048576.0;
  return (new Task(
              env, [=] {
                *measured = {measurePeakFlops(threads), measurePeakBf16Flops(threads), measurePeakInt8Ops(threads),
                             measureReadBandwidth(threads, bytes)};
              },
              [measured](Napi::Env env) -> Napi::Value {
                Napi::Object out = Napi::Object::New(env);
                out.Set("peakFlops", (*measured)[0]);
                out.Set("peakBf16Flops", (*measured)[1]);
                out.Set("peakInt8Ops", (*measured)[2]);
                out.Set("readBandwidth", (*measured)[3]);
                return out;
              }))
      ->Start();
}

// privateBuffer(bytes): Promise<ArrayBuffer>. Memory for a private copy of a large input, allocated
// and touched on a worker: a fresh page costs a fault on first write (about 4 ms per MiB on a VM),
// which the main thread then does not pay while it copies the caller's array in slices.
Napi::Value PrivateBufferJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowError(env, ErrorCode::InvalidArgument, "Expected a byte count for privateBuffer");
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 1 && requested <= 1e12)) ThrowError(env, ErrorCode::InvalidArgument, "Expected 1 byte to 1 TB for privateBuffer");
  const size_t bytes = static_cast<size_t>(requested);
  auto memory = std::make_shared<void*>(nullptr);
  return (new Task(
              env,
              [=] {
                void* data = std::calloc(bytes, 1);  // zeroed: JavaScript never sees old heap contents
                if (data == nullptr) throw Error(ErrorCode::ResourceLimit, "could not allocate " + std::to_string(bytes) + " bytes for a private input copy");
                // Touch every page here, off the main thread: calloc leaves fresh pages unmapped.
                auto* bytesOut = static_cast<volatile unsigned char*>(data);
                for (size_t at = 0; at < bytes; at += 4096) bytesOut[at] = 0;
                if (bytes > 0) bytesOut[bytes - 1] = 0;
                *memory = data;
              },
              [=](Napi::Env env) -> Napi::Value {
                void* data = *memory;
                *memory = nullptr;
                return Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env, void* p) { std::free(p); });
              }))
      ->Start();
}

}  // namespace cangen::bindings
