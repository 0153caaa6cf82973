#include "errors.h"

#include "instance_data.h"

namespace cangen::bindings {

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "Expected a function (code, message) => Error for setErrorFactory");
  }
  GetInstanceData(env).errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Error MakeError(Napi::Env env, ErrorCode code, const std::string& message) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data == nullptr || data->errorFactory.IsEmpty()) {
    Napi::Error plain = Napi::Error::New(env, message);
    plain.Set("code", Napi::String::New(env, errorCodeName(code)));
    return plain;
  }
  Napi::Value made = data->errorFactory.Call(
      {Napi::String::New(env, errorCodeName(code)), Napi::String::New(env, message)});
  return Napi::Error(env, made);
}

void ThrowError(Napi::Env env, ErrorCode code, const std::string& message) {
  throw MakeError(env, code, message);
}

}  // namespace cangen::bindings
