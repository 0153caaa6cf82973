#pragma once
// Typed arrays across the boundary: checked views in, flat typed arrays out. No number[] copies.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "flat/flat_index.h"

namespace cangen::bindings {

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  size_t length = 0;
};

template <typename T>
constexpr napi_typedarray_type TypedArrayKind();
template <>
constexpr napi_typedarray_type TypedArrayKind<float>() { return napi_float32_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<int64_t>() { return napi_bigint64_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<uint64_t>() { return napi_biguint64_array; }

template <typename T>
const char* TypedArrayName();
template <>
inline const char* TypedArrayName<float>() { return "Float32Array"; }
template <>
inline const char* TypedArrayName<int64_t>() { return "BigInt64Array"; }
template <>
inline const char* TypedArrayName<uint64_t>() { return "BigUint64Array"; }

template <typename T>
ArrayArg<T> TypedArrayArg(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != TypedArrayKind<T>()) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a ") + TypedArrayName<T>() + " for " + name);
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  return {array.Data(), array.ElementLength()};
}

inline int IntArg(const Napi::Value& value, const char* name, int min, int max) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string("Expected a number for ") + name);
  double v = value.As<Napi::Number>().DoubleValue();
  if (v != static_cast<int>(v) || v < min || v > max) {
    throw Napi::RangeError::New(value.Env(), std::string("Expected an integer between ") + std::to_string(min) +
                                                 " and " + std::to_string(max) + " for " + name + " but received " +
                                                 std::to_string(v));
  }
  return static_cast<int>(v);
}

template <typename T>
Napi::TypedArrayOf<T> CopyToTypedArray(Napi::Env env, const std::vector<T>& values) {
  auto array = Napi::TypedArrayOf<T>::New(env, values.size());
  if (!values.empty()) std::memcpy(array.Data(), values.data(), values.size() * sizeof(T));
  return array;
}

// The optional `cancel` of a search's options: one Int32 the caller raises (lib/ makes it over a
// SharedArrayBuffer, which cannot be detached, and sets it with Atomics.store when its AbortSignal
// fires). The search reads it from a worker thread: pin the array until the search ends.
inline const int32_t* CancelWord(const Napi::Object& options) {
  Napi::Value value = options.Get("cancel");
  if (value.IsUndefined()) return nullptr;
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      value.As<Napi::Int32Array>().ElementLength() < 1) {
    throw Napi::TypeError::New(options.Env(), "Expected an Int32Array of at least one element for cancel");
  }
  return value.As<Napi::Int32Array>().Data();
}

inline Napi::Object SearchResultToJs(Napi::Env env, const SearchResult& result) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ids", CopyToTypedArray(env, result.ids));
  out.Set("scores", CopyToTypedArray(env, result.scores));
  out.Set("counts", CopyToTypedArray(env, result.counts));
  if (!result.gpuFallback.empty()) out.Set("gpuFallback", result.gpuFallback);
  return out;
}

}  // namespace cangen::bindings
