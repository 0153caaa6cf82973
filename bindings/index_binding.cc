#include "index_binding.h"

#include "ann/faiss_index.h"
#include "arrays.h"
#include "errors.h"
#include "flat/flat_index.h"
#include "promise_worker.h"

namespace cangen::bindings {

namespace {

size_t RowsOf(Napi::Env env, const ArrayArg<float>& values, int dim, const char* name) {
  if (values.length == 0 || values.length % static_cast<size_t>(dim) != 0) {
    ThrowError(env, ErrorCode::DimensionMismatch,
               std::string("Expected a non-empty multiple of ") + std::to_string(dim) + " values for " + name +
                   " but received " + std::to_string(values.length));
  }
  return values.length / dim;
}

}  // namespace

Napi::Function IndexBinding::Define(Napi::Env env) {
  return DefineClass(env, "NativeIndex",
                     {InstanceMethod<&IndexBinding::Train>("train"), InstanceMethod<&IndexBinding::Add>("add"),
                      InstanceMethod<&IndexBinding::Search>("search"), InstanceMethod<&IndexBinding::Size>("size"),
                      InstanceMethod<&IndexBinding::IsTrained>("isTrained"),
                      InstanceMethod<&IndexBinding::Close>("close")});
}

// new NativeIndex(kind ("flat" | "faiss"), dim, metric (0 ip, 1 l2, 2 cosine), threads, factory)
IndexBinding::IndexBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IndexBinding>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for kind");
  std::string kind = info[0].As<Napi::String>();
  int dim = IntArg(info[1], "dim", 1, 65536);
  Metric metric = static_cast<Metric>(IntArg(info[2], "metric", 0, 2));
  int threads = IntArg(info[3], "threads", 0, 4096);
  index_ = Guard(env, [&]() -> std::shared_ptr<Index> {
    if (kind == "flat") return std::make_shared<FlatIndex>(dim, metric, threads);
    if (kind == "faiss") {
      if (!info[4].IsString()) throw Napi::TypeError::New(env, "Expected a FAISS factory string");
      return std::make_shared<FaissIndex>(dim, metric, info[4].As<Napi::String>().Utf8Value(), threads);
    }
    throw Error(ErrorCode::InvalidArgument, "Expected kind 'flat' or 'faiss' but received '" + kind + "'");
  });
}

std::shared_ptr<Index> IndexBinding::Open(Napi::Env env) const {
  if (!index_) ThrowError(env, ErrorCode::Closed, "This index is closed: create a new one to add or search");
  return index_;
}

// train(vectors: Float32Array): Promise<void>
Napi::Value IndexBinding::Train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto vectors = TypedArrayArg<float>(info[0], "vectors");
  RowsOf(env, vectors, index->dim(), "vectors");
  return (new Task(env, [=] { index->train(vectors.data, vectors.length / index->dim()); }))->Start();
}

// add(ids: BigInt64Array, vectors: Float32Array): Promise<void>
Napi::Value IndexBinding::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto ids = TypedArrayArg<int64_t>(info[0], "ids");
  auto vectors = TypedArrayArg<float>(info[1], "vectors");
  if (vectors.length != ids.length * static_cast<size_t>(index->dim())) {
    ThrowError(env, ErrorCode::DimensionMismatch,
               "Expected " + std::to_string(ids.length) + " x " + std::to_string(index->dim()) +
                   " vector values but received " + std::to_string(vectors.length));
  }
  return (new Task(env, [=] { index->add(ids.data, vectors.data, ids.length); }))->Start();
}

// search(queries: Float32Array, k, device (0 cpu, 1 gpu), gpuDevice, threads)
//   : Promise<{ids: BigInt64Array, scores: Float32Array, counts: Uint32Array}>
Napi::Value IndexBinding::Search(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto queries = TypedArrayArg<float>(info[0], "queries");
  int k = IntArg(info[1], "k", 1, 1 << 24);
  SearchOptions options;
  options.device = IntArg(info[2], "device", 0, 1) == 1 ? Device::Gpu : Device::Cpu;
  options.gpuDevice = IntArg(info[3], "gpuDevice", 0, 1024);
  options.threads = IntArg(info[4], "threads", 0, 4096);
  size_t nq = RowsOf(env, queries, index->dim(), "queries");
  auto result = std::make_shared<SearchResult>();
  return (new Task(
              env, [=] { *result = index->search(queries.data, static_cast<int>(nq), k, options); },
              [result](Napi::Env env) -> Napi::Value { return SearchResultToJs(env, *result); }))
      ->Start();
}

Napi::Value IndexBinding::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->size()));
}

Napi::Value IndexBinding::IsTrained(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Open(info.Env())->isTrained());
}

Napi::Value IndexBinding::Close(const Napi::CallbackInfo& info) {
  index_.reset();
  return info.Env().Undefined();
}

}  // namespace cangen::bindings
