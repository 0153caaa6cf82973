#pragma once
// Per-environment state of the addon (one per main thread or worker thread): the error factory
// lib/ registered and the constructors needed to make objects from native code.
#include <napi.h>

#include <string>

namespace cangen::bindings {

struct InstanceData {
  Napi::FunctionReference errorFactory;
  Napi::FunctionReference adIndexConstructor;
  Napi::FunctionReference filterConstructor;
  Napi::FunctionReference sequenceEncoderConstructor;
  Napi::FunctionReference settleOnNextTurn;  // (value, ok) => Promise settled from setImmediate
  Napi::FunctionReference searchResult;      // (ids, scores, counts) => ({ ids, scores, counts })
};

InstanceData& GetInstanceData(Napi::Env env);

// The function in `slot` of this environment's InstanceData, made from JavaScript `source` on
// first use: for what a JavaScript literal does faster than N-API calls.
Napi::Function ScriptFunction(Napi::Env env, Napi::FunctionReference InstanceData::*slot, const char* source);

// The wrapper behind a JavaScript handle that `constructor` (one of InstanceData's) made; a
// TypeError naming the expected `type` and the argument `name` for anything else.
template <typename Binding>
Binding* UnwrapHandle(const Napi::Value& value, Napi::FunctionReference InstanceData::*constructor, const char* type,
                      const char* name) {
  const Napi::FunctionReference& made = GetInstanceData(value.Env()).*constructor;
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(made.Value())) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a ") + type + " for " + name);
  }
  return Binding::Unwrap(value.As<Napi::Object>());
}

}  // namespace cangen::bindings
