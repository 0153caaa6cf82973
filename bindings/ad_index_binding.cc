#include "ad_index_binding.h"

#include <algorithm>
#include <cmath>

#include "arrays.h"
#include "errors.h"
#include "inline_work.h"
#include "instance_data.h"
#include "promise_worker.h"

namespace cangen::bindings {

namespace {

int IntOption(const Napi::Object& o, const char* name, int fallback, int min, int max) {
  Napi::Value v = o.Get(name);
  return v.IsUndefined() ? fallback : IntArg(v, name, min, max);
}

bool BoolOption(const Napi::Object& o, const char* name, bool fallback) {
  Napi::Value v = o.Get(name);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

AnnConfig ConfigArg(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "Expected an index configuration object");
  Napi::Object o = value.As<Napi::Object>();
  AnnConfig c;
  c.kind = static_cast<AnnKind>(IntOption(o, "kind", 0, 0, 5));
  c.dim = IntArg(o.Get("dim"), "dim", 1, 65536);
  c.metric = static_cast<Metric>(IntOption(o, "metric", 0, 0, 2));
  c.nlist = IntOption(o, "nlist", c.nlist, 1, 1 << 24);
  c.pqBytes = IntOption(o, "pqBytes", c.pqBytes, 1, 65536);
  c.opq = BoolOption(o, "opq", c.opq);
  c.hnswM = IntOption(o, "hnswM", c.hnswM, 2, 1024);
  c.efConstruction = IntOption(o, "efConstruction", c.efConstruction, 1, 1 << 16);
  c.storeVectors = BoolOption(o, "storeVectors", c.storeVectors);
  c.nprobe = IntOption(o, "nprobe", c.nprobe, 1, 1 << 24);
  c.efSearch = IntOption(o, "efSearch", c.efSearch, 1, 1 << 16);
  c.rerank = IntOption(o, "rerank", c.rerank, 0, 1024);
  c.precision = static_cast<Precision>(IntOption(o, "precision", 0, 0, 2));
  Napi::Value factory = o.Get("factory");
  if (factory.IsString()) c.factory = factory.As<Napi::String>().Utf8Value();
  return c;
}

template <typename T>
std::optional<std::vector<T>> ListOption(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsTypedArray()) throw Napi::TypeError::New(o.Env(), std::string("Expected a typed array for filter.") + name);
  auto array = v.As<Napi::TypedArray>();
  std::vector<T> out(array.ElementLength());
  if constexpr (std::is_same_v<T, int64_t>) {
    auto ids = TypedArrayArg<int64_t>(v, name);
    std::copy(ids.data, ids.data + ids.length, out.begin());
  } else {
    if (array.TypedArrayType() != napi_uint32_array) throw Napi::TypeError::New(o.Env(), std::string("Expected a Uint32Array for filter.") + name);
    auto values = v.As<Napi::Uint32Array>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(values[i]);
  }
  return out;
}

FilterSpec FilterArg(const Napi::Value& value) {
  if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), "Expected a filter object");
  Napi::Object o = value.As<Napi::Object>();
  FilterSpec spec;
  Napi::Value active = o.Get("active");
  if (active.IsBoolean()) spec.active = active.As<Napi::Boolean>().Value();
  if (auto budgets = ListOption<uint32_t>(o, "budgets")) spec.budgets = std::vector<uint8_t>(budgets->begin(), budgets->end());
  spec.advertisers = ListOption<uint32_t>(o, "advertisers");
  spec.campaigns = ListOption<uint32_t>(o, "campaigns");
  spec.categories = ListOption<uint32_t>(o, "categories");
  spec.geos = ListOption<uint32_t>(o, "geos");
  spec.excludedAdvertisers = ListOption<uint32_t>(o, "excludedAdvertisers");
  spec.ids = ListOption<int64_t>(o, "ids");
  return spec;
}

// A Uint32Array of n x 6 values per ad (active, budget, advertiser, campaign, category, geo), or
// null/undefined for none.
std::vector<AdAttributes> AttributesArg(const Napi::Value& value, size_t n) {
  std::vector<AdAttributes> out;
  if (value.IsNull() || value.IsUndefined()) return out;
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      value.As<Napi::TypedArray>().ElementLength() != n * 6) {
    throw Napi::TypeError::New(value.Env(), "Expected a Uint32Array of ids.length x 6 attribute values");
  }
  auto a = value.As<Napi::Uint32Array>();
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    AdAttributes& x = out[i];
    x.active = static_cast<uint8_t>(a[i * 6] != 0);
    x.budget = static_cast<uint8_t>(a[i * 6 + 1]);
    x.advertiser = a[i * 6 + 2];
    x.campaign = a[i * 6 + 3];
    x.category = a[i * 6 + 4];
    x.geo = a[i * 6 + 5];
  }
  return out;
}

Napi::Object StatsToJs(Napi::Env env, const AnnStats& s) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("live", static_cast<double>(s.live));
  out.Set("deleted", static_cast<double>(s.deleted));
  out.Set("slots", static_cast<double>(s.slots));
  out.Set("bytes", static_cast<double>(s.bytes));
  out.Set("vectorBytes", static_cast<double>(s.vectorBytes));
  out.Set("indexBytes", static_cast<double>(s.indexBytes));
  out.Set("catalogBytes", static_cast<double>(s.catalogBytes));
  out.Set("trained", s.trained);
  out.Set("generation", static_cast<double>(s.generation));
  out.Set("filters", static_cast<double>(s.filters));
  out.Set("filterCompiles", static_cast<double>(s.filterCompiles));
  out.Set("filterSlotUpdates", static_cast<double>(s.filterSlotUpdates));
  out.Set("reducedQueries", static_cast<double>(s.reducedQueries));
  out.Set("reducedReranked", static_cast<double>(s.reducedReranked));
  return out;
}


// Estimated multiply-adds of a CPU search of nq queries, following AdIndex::search's plan
// (ad_index.cc): the flat scan of every ad; IVF's coarse step over the nlist centroids plus
// nprobe mean-sized lists (list sizes vary: the mean is an estimate, not a bound); HNSW's
// efSearch expansions of up to 2M neighbours each; then the re-ranking of k x rerank candidates.
// A filter keeping a fraction f widens nprobe and efSearch by 1/f as the search does, and a
// selective one (at most max(4096, live / 50) ads) is priced as a visit of every list, or of every
// eligible ad's vector, whichever costs more.
// Infinity for what it cannot price (factory strings, per-call filter descriptions).
double EstimatedSearchMacs(const AnnConfig& c, size_t live, const AnnSearchParams& p, int nq, int k,
                           const CompiledFilter* filter) {
  const double n = static_cast<double>(live), dim = c.dim;
  const double eligible = filter ? static_cast<double>(filter->count()) : n;
  const double fraction = n > 0 ? std::max(eligible, 1.0) / n : 1.0;
  const bool selective = filter && eligible <= std::max(4096.0, n / 50);
  const double rerank = c.storeVectors ? static_cast<double>(k) * std::max(p.rerank >= 0 ? p.rerank : c.rerank, 0) * dim : 0;
  double perQuery = 0;
  switch (c.kind) {
    case AnnKind::Flat:
      perQuery = n * dim;
      break;
    case AnnKind::IvfFlat:
    case AnnKind::IvfSq8:
    case AnnKind::IvfPq: {
      const double nlist = c.nlist, perAd = c.kind == AnnKind::IvfPq ? c.pqBytes : dim;
      const double tables = c.kind == AnnKind::IvfPq ? 256 * dim : 0;  // PQ distance tables
      const double nprobe = selective ? nlist : std::min(nlist, std::ceil((p.nprobe > 0 ? p.nprobe : c.nprobe) / fraction));
      perQuery = nlist * dim + tables + nprobe * (n / nlist) * perAd + rerank;
      // A selective filter is answered over the eligible ads' stored vectors, or by every list.
      if (selective) perQuery = std::max(perQuery, eligible * dim);
      break;
    }
    case AnnKind::Hnsw: {
      const double ef = std::min(4096.0, std::max<double>(std::max(p.efSearch > 0 ? p.efSearch : c.efSearch, k) / fraction, k));
      perQuery = selective ? n * dim : ef * 2 * c.hnswM * dim + rerank;
      break;
    }
    default:
      return INFINITY;
  }
  return nq * (perQuery + 16.0 * k);  // + the top-k bookkeeping of every result
}

}  // namespace

// ---- FilterBinding -----------------------------------------------------------------------

Napi::Function FilterBinding::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeFilter", {InstanceMethod<&FilterBinding::Count>("count")});
  GetInstanceData(env).filterConstructor = Napi::Persistent(f);
  return f;
}

FilterBinding::FilterBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FilterBinding>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeFilter objects are made by compileFilter()");
  }
  filter = *info[0].As<Napi::External<std::shared_ptr<const CompiledFilter>>>().Data();
}

Napi::Object FilterBinding::Wrap(Napi::Env env, std::shared_ptr<const CompiledFilter> filter) {
  return GetInstanceData(env).filterConstructor.New({Napi::External<std::shared_ptr<const CompiledFilter>>::New(env, &filter)});
}

std::shared_ptr<const CompiledFilter> FilterBinding::FilterOf(const Napi::Value& value, const char* name) {
  return UnwrapHandle<FilterBinding>(value, &InstanceData::filterConstructor, "NativeFilter", name)->filter;
}

Napi::Value FilterBinding::Count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(filter->count()));
}

// ---- AdIndexBinding ----------------------------------------------------------------------

Napi::Function AdIndexBinding::Define(Napi::Env env) {
  Napi::Function f = DefineClass(
      env, "NativeAdIndex",
      {InstanceMethod<&AdIndexBinding::Train>("train"), InstanceMethod<&AdIndexBinding::Upsert>("upsert"),
       InstanceMethod<&AdIndexBinding::Remove>("remove"),
       InstanceMethod<&AdIndexBinding::SetAttributes>("setAttributes"), InstanceMethod<&AdIndexBinding::Search>("search"),
       InstanceMethod<&AdIndexBinding::CompileFilter>("compileFilter"),
       InstanceMethod<&AdIndexBinding::EligibleIds>("eligibleIds"),
       InstanceMethod<&AdIndexBinding::Compact>("compact"), InstanceMethod<&AdIndexBinding::Stats>("stats"),
       InstanceMethod<&AdIndexBinding::Save>("save"), InstanceMethod<&AdIndexBinding::Size>("size"),
       InstanceMethod<&AdIndexBinding::Config>("config"),
       InstanceMethod<&AdIndexBinding::Generation>("generation"),
       InstanceMethod<&AdIndexBinding::IsTrained>("isTrained"), InstanceMethod<&AdIndexBinding::Close>("close"),
       StaticMethod<&AdIndexBinding::Load>("load")});
  GetInstanceData(env).adIndexConstructor = Napi::Persistent(f);
  return f;
}

// new NativeAdIndex(config, threads) or, from load(), new NativeAdIndex(External<shared_ptr>)
AdIndexBinding::AdIndexBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AdIndexBinding>(info) {
  Napi::Env env = info.Env();
  if (info[0].IsExternal()) {
    index_ = *info[0].As<Napi::External<std::shared_ptr<AdIndex>>>().Data();
    return;
  }
  AnnConfig config = ConfigArg(info[0]);
  int threads = IntArg(info[1], "threads", 0, 4096);
  index_ = Guard(env, [&] { return std::make_shared<AdIndex>(config, threads); });
}

std::shared_ptr<AdIndex> AdIndexBinding::IndexOf(const Napi::Value& value, const char* name) {
  return UnwrapHandle<AdIndexBinding>(value, &InstanceData::adIndexConstructor, "NativeAdIndex", name)->Open(value.Env());
}

std::shared_ptr<WriteGate> AdIndexBinding::WritesOf(const Napi::Value& value) {
  return UnwrapHandle<AdIndexBinding>(value, &InstanceData::adIndexConstructor, "NativeAdIndex", "index")->writes_;
}

PromiseWorker* AdIndexBinding::Write(PromiseWorker* worker) const {
  worker->Keep(std::make_shared<PendingWrite>(writes_));
  return worker;
}

std::shared_ptr<AdIndex> AdIndexBinding::Open(Napi::Env env) const {
  if (!index_) ThrowError(env, ErrorCode::Closed, "This index is closed: load or create a new one");
  return index_;
}

// load(path, threads): Promise<NativeAdIndex>
Napi::Value AdIndexBinding::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a path string");
  std::string path = info[0].As<Napi::String>();
  int threads = IntArg(info[1], "threads", 0, 4096);
  auto loaded = std::make_shared<std::shared_ptr<AdIndex>>();
  return (new Task(
              env, [=] { *loaded = AdIndex::load(path, threads); },
              [loaded](Napi::Env env) -> Napi::Value {
                return GetInstanceData(env).adIndexConstructor.New({Napi::External<std::shared_ptr<AdIndex>>::New(env, loaded.get())});
              }))
      ->Start();
}

Napi::Value AdIndexBinding::Train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto vectors = TypedArrayArg<float>(info[0], "sample");
  const size_t dim = static_cast<size_t>(index->config().dim);
  if (vectors.length == 0 || vectors.length % dim != 0) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected a non-empty multiple of " + std::to_string(dim) +
                                                      " values for sample but received " + std::to_string(vectors.length));
  }
  return Write(new Task(env, [=] { index->train(vectors.data, vectors.length / dim); }))->Start();
}

// upsert(ids: BigInt64Array, vectors: Float32Array, attributes: Uint32Array (n x 6) | null,
//        insertOnly?: boolean (an id already present rejects the batch: add()))
Napi::Value AdIndexBinding::Upsert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto ids = TypedArrayArg<int64_t>(info[0], "ids");
  auto vectors = TypedArrayArg<float>(info[1], "vectors");
  const size_t dim = static_cast<size_t>(index->config().dim);
  if (vectors.length != ids.length * dim) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected " + std::to_string(ids.length) + " x " + std::to_string(dim) +
                                                      " vector values but received " + std::to_string(vectors.length));
  }
  auto attributes = std::make_shared<std::vector<AdAttributes>>(AttributesArg(info[2], ids.length));
  const bool insertOnly = info[3].ToBoolean().Value();
  return Write(new Task(env, [=] {
           index->upsert(ids.data, vectors.data, attributes->empty() ? nullptr : attributes->data(), ids.length, insertOnly);
         }))
      ->Start();
}

// remove(ids: BigInt64Array): Promise<number removed>
Napi::Value AdIndexBinding::Remove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto ids = TypedArrayArg<int64_t>(info[0], "ids");
  auto removed = std::make_shared<size_t>(0);
  auto* task = new Task(
      env, [=] { *removed = index->remove(ids.data, ids.length); },
      [removed](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(*removed)); });
  return Write(task)->Start();
}

// setAttributes(ids: BigInt64Array, attributes: Uint32Array (n x 6)): Promise<number changed>
Napi::Value AdIndexBinding::SetAttributes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto ids = TypedArrayArg<int64_t>(info[0], "ids");
  auto attributes = std::make_shared<std::vector<AdAttributes>>(AttributesArg(info[1], ids.length));
  if (attributes->size() != ids.length) throw Napi::TypeError::New(env, "Expected attributes for every id");
  auto changed = std::make_shared<size_t>(0);
  auto* task = new Task(
      env, [=] { *changed = index->setAttributes(ids.data, attributes->data(), ids.length); },
      [changed](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(*changed)); });
  return Write(task)->Start();
}

// search(queries, k, nprobe, efSearch, rerank, threads, device, gpuDevice, cancel | null, filter | null,
// spec?): positional numbers (a search is called for every request: reading an options object's
// properties by name cost more than a tiny search); filter is a NativeFilter; spec a filter
// description compiled inside the search for this search only.
Napi::Value AdIndexBinding::Search(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto queries = TypedArrayArg<float>(info[0], "queries");
  int k = IntArg(info[1], "k", 1, 1 << 24);
  AnnSearchParams params;
  params.nprobe = IntArg(info[2], "nprobe", 0, 1 << 24);
  params.efSearch = IntArg(info[3], "efSearch", 0, 1 << 16);
  params.rerank = IntArg(info[4], "rerank", -1, 1024);
  params.threads = IntArg(info[5], "threads", 0, 4096);
  params.device = IntArg(info[6], "device", 0, 1) == 1 ? Device::Gpu : Device::Cpu;
  params.gpuDevice = IntArg(info[7], "gpuDevice", 0, 1024);
  params.cancel.word = CancelWordArg(info[8]);
  std::shared_ptr<const CompiledFilter> filter;
  std::shared_ptr<const FilterSpec> spec;
  if (info[9].IsObject()) filter = FilterBinding::FilterOf(info[9], "filter");
  if (info.Length() > 10 && info[10].IsObject()) spec = std::make_shared<const FilterSpec>(FilterArg(info[10]));
  const size_t dim = static_cast<size_t>(index->config().dim);
  if (queries.length == 0 || queries.length % dim != 0) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected a non-empty multiple of " + std::to_string(dim) +
                                                      " values for queries but received " + std::to_string(queries.length));
  }
  const int nq = static_cast<int>(queries.length / dim);
  if (params.device == Device::Cpu && !spec && Quiet(writes_) &&
      WithinInlineBudget(EstimatedSearchMacs(index->config(), index->size(), params, nq, k, filter.get()))) {
    ThreadLease lease(1, ThreadLease::IfFree{});
    if (lease.threads() > 0) {
      return SettledNow(env, [&] {
        params.filter = filter.get();
        return SearchResultToJs(env, index->search(queries.data, nq, k, params));
      });
    }
  }
  auto result = std::make_shared<SearchResult>();
  auto* task = new Task(
      env,
      [=]() mutable {
        params.filter = filter.get();
        params.filterSpec = spec.get();
        *result = index->search(queries.data, nq, k, params);
      },
      [result](Napi::Env env) -> Napi::Value { return SearchResultToJs(env, *result); });
  if (params.cancel.word != nullptr) task->Pin(info[8].As<Napi::Object>());  // shared with JavaScript, never copied
  return task->Start();
}

// compileFilter(spec): Promise<NativeFilter>
Napi::Value AdIndexBinding::CompileFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  auto spec = std::make_shared<FilterSpec>(FilterArg(info[0]));
  auto compiled = std::make_shared<std::shared_ptr<const CompiledFilter>>();
  return (new Task(
              env, [=] { *compiled = index->compile(*spec); },
              [=](Napi::Env env) -> Napi::Value { return FilterBinding::Wrap(env, *compiled); }))
      ->Start();
}

// eligibleIds(filter: NativeFilter): Promise<BigInt64Array>, the ads the filter admits now
Napi::Value AdIndexBinding::EligibleIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "Expected a compiled filter");
  std::shared_ptr<const CompiledFilter> filter = FilterBinding::FilterOf(info[0], "filter");
  auto ids = std::make_shared<std::vector<int64_t>>();
  return (new Task(
              env, [=] { *ids = index->eligibleIds(*filter); },
              [ids](Napi::Env env) -> Napi::Value { return CopyToTypedArray(env, *ids); }))
      ->Start();
}

Napi::Value AdIndexBinding::Compact(const Napi::CallbackInfo& info) {
  auto index = Open(info.Env());
  return Write(new Task(info.Env(), [=] { index->compact(); }))->Start();
}

Napi::Value AdIndexBinding::Stats(const Napi::CallbackInfo& info) {
  auto index = Open(info.Env());
  auto stats = std::make_shared<AnnStats>();
  return (new Task(
              info.Env(), [=] { *stats = index->stats(); },
              [stats](Napi::Env env) -> Napi::Value { return StatsToJs(env, *stats); }))
      ->Start();
}

Napi::Value AdIndexBinding::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto index = Open(env);
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a path string");
  std::string path = info[0].As<Napi::String>();
  return (new Task(env, [=] { index->save(path); }))->Start();
}

// config(): the immutable configuration, in the shape the constructor takes.
Napi::Value AdIndexBinding::Config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const AnnConfig& c = Open(env)->config();
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", static_cast<int>(c.kind));
  out.Set("dim", c.dim);
  out.Set("metric", static_cast<int>(c.metric));
  out.Set("nlist", c.nlist);
  out.Set("pqBytes", c.pqBytes);
  out.Set("opq", c.opq);
  out.Set("hnswM", c.hnswM);
  out.Set("efConstruction", c.efConstruction);
  out.Set("factory", c.factory);
  out.Set("storeVectors", c.storeVectors);
  out.Set("nprobe", c.nprobe);
  out.Set("efSearch", c.efSearch);
  out.Set("rerank", c.rerank);
  out.Set("precision", static_cast<int>(c.precision));
  return out;
}

Napi::Value AdIndexBinding::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->size()));
}

Napi::Value AdIndexBinding::Generation(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->generation()));
}

Napi::Value AdIndexBinding::IsTrained(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Open(info.Env())->isTrained());
}

Napi::Value AdIndexBinding::Close(const Napi::CallbackInfo& info) {
  index_.reset();
  return info.Env().Undefined();
}

}  // namespace cangen::bindings
