#pragma once
// Typed arrays across the boundary: checked copies in, flat typed arrays out. No number[] copies.
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/search_result.h"

namespace cangen::bindings {

// A typed array argument as a worker may read it. Workers must not read the caller's memory
// after the call returns: while the promise is pending the caller may transfer the buffer
// (structuredClone or postMessage with transfer) or shrink a resizable one, which frees or
// unmaps that memory; holding a reference to the typed array prevents neither. So arrays up to
// kSyncCopyBytes are copied here, on the main thread, as the call is made. Larger ones would
// block the event loop for the copy (a 1M x 64 add: 256 MB, 0.1 s, or over 1 s where page faults
// are slow), so lib/ hands them over as private copies it made in slices between event-loop
// turns (lib/private-input.ts), which nobody else can reach; here they are only kept alive.
// `owner` holds the copy or the reference; a worker's lambda captures it by value, and it is
// released on the main thread with the worker.
constexpr size_t kSyncCopyBytes = size_t{1} << 20;  // = syncCopyBytes in lib/private-input.ts

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  size_t length = 0;
  std::shared_ptr<const void> owner;
};

template <typename T>
constexpr napi_typedarray_type TypedArrayKind();
template <>
constexpr napi_typedarray_type TypedArrayKind<float>() { return napi_float32_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<int64_t>() { return napi_bigint64_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<uint64_t>() { return napi_biguint64_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<uint8_t>() { return napi_uint8_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<int32_t>() { return napi_int32_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<uint32_t>() { return napi_uint32_array; }
template <>
constexpr napi_typedarray_type TypedArrayKind<double>() { return napi_float64_array; }

template <typename T>
const char* TypedArrayName();
template <>
inline const char* TypedArrayName<float>() { return "Float32Array"; }
template <>
inline const char* TypedArrayName<int64_t>() { return "BigInt64Array"; }
template <>
inline const char* TypedArrayName<uint64_t>() { return "BigUint64Array"; }
template <>
inline const char* TypedArrayName<uint8_t>() { return "Uint8Array"; }
template <>
inline const char* TypedArrayName<int32_t>() { return "Int32Array"; }
template <>
inline const char* TypedArrayName<uint32_t>() { return "Uint32Array"; }
template <>
inline const char* TypedArrayName<double>() { return "Float64Array"; }

template <typename T>
ArrayArg<T> TypedArrayArg(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != TypedArrayKind<T>()) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a ") + TypedArrayName<T>() + " for " + name);
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  ArrayArg<T> arg;
  arg.length = array.ElementLength();
  if (arg.length * sizeof(T) <= kSyncCopyBytes) {
    auto copy = std::make_shared<std::vector<T>>(array.Data(), array.Data() + arg.length);
    arg.data = copy->data();
    arg.owner = std::move(copy);
  } else {
    arg.data = array.Data();
    arg.owner = std::make_shared<Napi::ObjectReference>(Napi::Persistent(value.As<Napi::Object>()));
  }
  return arg;
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
// The same word passed as an argument of its own (undefined or null: none).
inline const int32_t* CancelWordArg(const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      value.As<Napi::Int32Array>().ElementLength() < 1) {
    throw Napi::TypeError::New(value.Env(), "Expected an Int32Array of at least one element for cancel");
  }
  return value.As<Napi::Int32Array>().Data();
}

inline const int32_t* CancelWord(const Napi::Object& options) { return CancelWordArg(options.Get("cancel")); }

// { ids, scores, counts[, gpuFallback] }: the three arrays are views of one ArrayBuffer (ids, then
// scores, then counts), and the object is made by a JavaScript literal (InstanceData), because a
// search result is made on every call: three backing stores and three property sets by name cost
// more than a tiny search.
Napi::Object SearchResultToJs(Napi::Env env, const SearchResult& result);

}  // namespace cangen::bindings
