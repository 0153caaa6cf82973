#include "arrays.h"

#include "instance_data.h"

namespace cangen::bindings {

namespace {
template <typename T>
size_t copyInto(uint8_t* bytes, size_t at, const std::vector<T>& values) {
  if (!values.empty()) std::memcpy(bytes + at, values.data(), values.size() * sizeof(T));
  return at + values.size() * sizeof(T);
}
}  // namespace

Napi::Object SearchResultToJs(Napi::Env env, const SearchResult& result) {
  // ids first: the 8-byte elements are aligned at offset 0, the 4-byte ones after them.
  const size_t n = result.ids.size(), rows = result.counts.size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * sizeof(int64_t) + n * sizeof(float) + rows * sizeof(uint32_t));
  auto* bytes = static_cast<uint8_t*>(buffer.Data());
  const size_t scoresAt = copyInto(bytes, 0, result.ids);
  const size_t countsAt = copyInto(bytes, scoresAt, result.scores);
  copyInto(bytes, countsAt, result.counts);
  Napi::Function make = ScriptFunction(env, &InstanceData::searchResult, "(ids, scores, counts) => ({ ids, scores, counts })");
  Napi::Object out = make.Call({Napi::BigInt64Array::New(env, n, buffer, 0), Napi::Float32Array::New(env, n, buffer, scoresAt),
                                Napi::Uint32Array::New(env, rows, buffer, countsAt)})
                         .As<Napi::Object>();
  if (!result.gpuFallback.empty()) out.Set("gpuFallback", result.gpuFallback);
  return out;
}

}  // namespace cangen::bindings
