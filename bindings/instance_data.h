#pragma once
// Per-environment state of the addon (one per main thread or worker thread): the error factory
// lib/ registered and the constructors needed to make objects from native code.
#include <napi.h>

namespace cangen::bindings {

struct InstanceData {
  Napi::FunctionReference errorFactory;
  Napi::FunctionReference adIndexConstructor;
  Napi::FunctionReference filterConstructor;
  Napi::FunctionReference sequenceEncoderConstructor;
};

InstanceData& GetInstanceData(Napi::Env env);

}  // namespace cangen::bindings
