#pragma once
// Error mapping at the boundary: every native failure becomes the JavaScript error class that
// lib/errors.ts registered for its code, so users can `switch (err.code)`.
#include <napi.h>

#include <string>

#include "common/error.h"

namespace cangen::bindings {

// Called once by lib/native.ts with a function (code, message) => Error.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info);
Napi::Error MakeError(Napi::Env env, ErrorCode code, const std::string& message);
[[noreturn]] void ThrowError(Napi::Env env, ErrorCode code, const std::string& message);

// Runs `body`, turning a native exception into the typed JavaScript one.
template <typename F>
auto Guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    ThrowError(env, e.code(), e.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    ThrowError(env, ErrorCode::Internal, "Out of memory");
  } catch (const std::exception& e) {
    ThrowError(env, ErrorCode::Internal, e.what());
  }
}

}  // namespace cangen::bindings
