#include "instance_data.h"

namespace cangen::bindings {

InstanceData& GetInstanceData(Napi::Env env) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data == nullptr) {
    data = new InstanceData();
    env.SetInstanceData(data);
  }
  return *data;
}

Napi::Function ScriptFunction(Napi::Env env, Napi::FunctionReference InstanceData::*slot, const char* source) {
  Napi::FunctionReference& function = GetInstanceData(env).*slot;
  if (function.IsEmpty()) function = Napi::Persistent(env.RunScript(source).As<Napi::Function>());
  return function.Value();
}

}  // namespace cangen::bindings
