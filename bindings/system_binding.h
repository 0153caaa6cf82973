#pragma once
#include <napi.h>

namespace cangen::bindings {

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info);
Napi::Value MeasureCeilingsJs(const Napi::CallbackInfo& info);
Napi::Value PrivateBufferJs(const Napi::CallbackInfo& info);
Napi::Value LimitsJs(const Napi::CallbackInfo& info);
Napi::Value SetLimitsJs(const Napi::CallbackInfo& info);

}  // namespace cangen::bindings
