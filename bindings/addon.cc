// Module entry: the thin N-API layer over native/. No retrieval logic lives here.
#include <napi.h>

#include "ad_index_binding.h"
#include "errors.h"
#include "scorer_binding.h"
#include "sequence_binding.h"
#include "system_binding.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace cangen::bindings;
  exports.Set("NativeScorer", ScorerBinding::Define(env));
  exports.Set("NativeSequenceEncoder", SequenceEncoderBinding::Define(env));
  exports.Set("NativeSequenceSessions", SequenceSessionsBinding::Define(env));
  exports.Set("NativeAdIndex", AdIndexBinding::Define(env));
  exports.Set("NativeFilter", FilterBinding::Define(env));
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfoJs, "buildInfo"));
  exports.Set("measureCeilings", Napi::Function::New(env, MeasureCeilingsJs, "measureCeilings"));
  exports.Set("privateBuffer", Napi::Function::New(env, PrivateBufferJs, "privateBuffer"));
  exports.Set("limits", Napi::Function::New(env, LimitsJs, "limits"));
  exports.Set("setLimits", Napi::Function::New(env, SetLimitsJs, "setLimits"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cangen, Init)
