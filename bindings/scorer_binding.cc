#include "scorer_binding.h"

#include <string>
#include <vector>

#include "ad_index_binding.h"
#include "arrays.h"
#include "errors.h"
#include "inline_work.h"
#include "promise_worker.h"

namespace cangen::bindings {

namespace {

Napi::Object ObjectArg(const Napi::Value& value, const char* name) {
  if (!value.IsObject()) throw Napi::TypeError::New(value.Env(), std::string("Expected an object for ") + name);
  return value.As<Napi::Object>();
}

std::string StringProp(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("Expected a string for model.") + name);
  return v.As<Napi::String>();
}

int IntProp(const Napi::Object& o, const char* name, int min, int max) { return IntArg(o.Get(name), name, min, max); }

bool BoolProp(const Napi::Object& o, const char* name) { return o.Get(name).ToBoolean().Value(); }

// The named tensor as a vector, or empty when the model does not have it.
std::vector<float> Tensor(const Napi::Object& tensors, const std::string& name) {
  Napi::Value v = tensors.Get(name);
  if (v.IsUndefined()) return {};
  auto a = TypedArrayArg<float>(v, name.c_str());
  return std::vector<float>(a.data, a.data + a.length);
}

DenseWeights Dense(const Napi::Object& tensors, const std::string& prefix, int in, int out) {
  DenseWeights d;
  d.in = in;
  d.out = out;
  d.weight = Tensor(tensors, prefix + ".weight");
  d.bias = Tensor(tensors, prefix + ".bias");
  d.normGamma = Tensor(tensors, prefix + ".norm.weight");
  d.normBeta = Tensor(tensors, prefix + ".norm.bias");
  return d;
}

// The model object lib/scorer builds from config.json and model.safetensors (see lib/scorer/model.ts).
ScorerModel ModelFromJs(const Napi::Object& spec) {
  ScorerModel m;
  const std::string kind = StringProp(spec, "kind");
  m.userDim = IntProp(spec, "userDim", 1, 65536);
  m.itemDim = IntProp(spec, "itemDim", 1, 65536);
  m.heads = IntProp(spec, "heads", 1, 1024);
  m.activation = StringProp(spec, "activation") == "silu" ? Activation::Silu : Activation::Relu;
  m.normEps = spec.Get("normEps").As<Napi::Number>().FloatValue();
  Napi::Object tensors = ObjectArg(spec.Get("tensors"), "model.tensors");
  if (kind == "dot") {
    m.kind = ScorerKind::Dot;
    m.dotProjection = Tensor(tensors, "dot.proj");
  } else if (kind == "mlp") {
    m.kind = ScorerKind::Mlp;
    m.useUser = BoolProp(spec, "useUser");
    m.useItem = BoolProp(spec, "useItem");
    m.useCross = BoolProp(spec, "useCross");
    Napi::Value hidden = spec.Get("hidden");
    if (!hidden.IsArray()) throw Napi::TypeError::New(spec.Env(), "Expected an array for model.hidden");
    Napi::Array widths = hidden.As<Napi::Array>();
    int in = m.firstLayerIn();
    for (uint32_t l = 0; l < widths.Length(); ++l) {
      const int out = IntArg(widths.Get(l), "model.hidden[]", 1, 65536);
      m.hidden.push_back(Dense(tensors, "mlp.layers." + std::to_string(l), in, out));
      in = out;
    }
    m.output = Dense(tensors, "mlp.out", in, m.heads);
  } else if (kind == "mol") {
    m.kind = ScorerKind::Mol;
    m.queryComponents = IntProp(spec, "queryComponents", 1, 256);
    m.itemComponents = IntProp(spec, "itemComponents", 1, 256);
    m.componentDim = IntProp(spec, "componentDim", 1, 4096);
    m.gatingWidth = IntProp(spec, "gatingWidth", 1, 65536);
    m.temperature = spec.Get("temperature").As<Napi::Number>().FloatValue();
    const int dc = m.componentDim, p = m.logits(), g = m.gatingWidth;
    m.queryProj = Dense(tensors, "mol.query_proj", m.userDim, m.queryComponents * dc);
    m.itemProj = Dense(tensors, "mol.item_proj", m.itemDim, m.itemComponents * dc);
    m.gateUser = Dense(tensors, "mol.gate.user", m.userDim, g);
    m.gateItem = Dense(tensors, "mol.gate.item", m.itemDim, g);
    m.gateLogits = Dense(tensors, "mol.gate.logits", p, g);
    m.gateOut = Dense(tensors, "mol.gate.out", g, m.heads * p);
  } else {
    throw Error(ErrorCode::InvalidArgument, "Expected model.kind 'dot', 'mlp' or 'mol' but received '" + kind + "'");
  }
  return m;
}

class AddWorker : public PromiseWorker {
 public:
  AddWorker(Napi::Env env, std::shared_ptr<Scorer> scorer, ArrayArg<int64_t> ids, ArrayArg<float> embeddings)
      : PromiseWorker(env), scorer_(std::move(scorer)), ids_(ids), embeddings_(embeddings) {}

 private:
  void Run() override { scorer_->add(ids_.data, embeddings_.data, ids_.length); }
  std::shared_ptr<Scorer> scorer_;
  ArrayArg<int64_t> ids_;
  ArrayArg<float> embeddings_;
};

class AttachWorker : public PromiseWorker {
 public:
  AttachWorker(Napi::Env env, std::shared_ptr<Scorer> scorer, std::shared_ptr<AdIndex> index)
      : PromiseWorker(env), scorer_(std::move(scorer)), index_(std::move(index)) {}

 private:
  void Run() override { scorer_->attach(index_); }
  std::shared_ptr<Scorer> scorer_;
  std::shared_ptr<AdIndex> index_;
};

class SearchWorker : public PromiseWorker {
 public:
  SearchWorker(Napi::Env env, std::shared_ptr<Scorer> scorer, ScorerRequest request)
      : PromiseWorker(env), scorer_(std::move(scorer)), request_(request) {}
  // The filter the request points to, kept alive until the search ends.
  void KeepFilter(std::shared_ptr<const CompiledFilter> filter) {
    request_.filter = filter.get();
    filter_ = std::move(filter);
  }

 private:
  void Run() override { result_ = scorer_->search(request_); }
  Napi::Value Result(Napi::Env env) override { return SearchResultToJs(env, result_); }
  std::shared_ptr<Scorer> scorer_;
  ScorerRequest request_;
  std::shared_ptr<const CompiledFilter> filter_;
  SearchResult result_;
};

class ScoreWorker : public PromiseWorker {
 public:
  ScoreWorker(Napi::Env env, std::shared_ptr<Scorer> scorer, ArrayArg<float> users, ArrayArg<float> weights,
              ArrayArg<int64_t> ids, bool all, int threads)
      : PromiseWorker(env), scorer_(std::move(scorer)), users_(users), weights_(weights), ids_(ids), all_(all), threads_(threads) {}

 private:
  void Run() override {
    const int nu = static_cast<int>(users_.length / scorer_->model().userDim);
    scores_ = scorer_->score(users_.data, nu, weights_.data, all_ ? nullptr : ids_.data, ids_.length, threads_);
  }
  Napi::Value Result(Napi::Env env) override { return CopyToTypedArray(env, scores_); }
  std::shared_ptr<Scorer> scorer_;
  ArrayArg<float> users_, weights_;
  ArrayArg<int64_t> ids_;
  bool all_;
  int threads_;
  std::vector<float> scores_;
};

int UsersOf(Napi::Env env, const ArrayArg<float>& users, const Scorer& scorer) {
  const size_t dim = scorer.model().userDim;
  if (users.length == 0 || users.length % dim != 0) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected a non-empty multiple of userDim " + std::to_string(dim) +
                                                      " values for users but received " + std::to_string(users.length));
  }
  return static_cast<int>(users.length / dim);
}

void CheckWeights(Napi::Env env, const ArrayArg<float>& weights, const Scorer& scorer) {
  if (weights.length != static_cast<size_t>(scorer.model().heads)) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected " + std::to_string(scorer.model().heads) +
                                                      " head weights but received " + std::to_string(weights.length));
  }
}

}  // namespace

Napi::Function ScorerBinding::Define(Napi::Env env) {
  return DefineClass(env, "NativeScorer",
                     {InstanceMethod<&ScorerBinding::Add>("add"), InstanceMethod<&ScorerBinding::Attach>("attach"),
                      InstanceMethod<&ScorerBinding::Search>("search"),
                      InstanceMethod<&ScorerBinding::Score>("score"), InstanceMethod<&ScorerBinding::Size>("size"),
                      InstanceMethod<&ScorerBinding::Info>("info"), InstanceMethod<&ScorerBinding::Close>("close")});
}

// new NativeScorer(model, threads, precision: 'fp32' | 'bf16' | 'int8')
ScorerBinding::ScorerBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScorerBinding>(info) {
  Napi::Env env = info.Env();
  Napi::Object spec = ObjectArg(info[0], "model");
  const int threads = IntArg(info[1], "threads", 0, 4096);
  const std::string name = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "fp32";
  const Precision precision = name == "bf16" ? Precision::Bf16 : name == "int8" ? Precision::Int8 : Precision::Fp32;
  if (precision == Precision::Fp32 && name != "fp32") {
    ThrowError(env, ErrorCode::InvalidArgument, "Expected precision 'fp32', 'bf16' or 'int8' but received '" + name + "'");
  }
  scorer_ = Guard(env, [&] { return std::make_shared<Scorer>(ModelFromJs(spec), threads, precision); });
}

std::shared_ptr<Scorer> ScorerBinding::Open(Napi::Env env) const {
  if (!scorer_) ThrowError(env, ErrorCode::Closed, "This scorer is closed: create a new one to add or search");
  return scorer_;
}

// add(ids: BigInt64Array, embeddings: Float32Array): Promise<void>
Napi::Value ScorerBinding::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto scorer = Open(env);
  auto ids = TypedArrayArg<int64_t>(info[0], "ids");
  auto embeddings = TypedArrayArg<float>(info[1], "embeddings");
  const size_t dim = scorer->model().itemDim;
  if (embeddings.length != ids.length * dim) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected " + std::to_string(ids.length) + " x itemDim " + std::to_string(dim) +
                                                      " embedding values but received " + std::to_string(embeddings.length));
  }
  auto* worker = new AddWorker(env, scorer, ids, embeddings);
  worker->Keep(std::make_shared<PendingWrite>(writes_));
  return worker->Start();
}

// attach(index: NativeAdIndex): Promise<void>
Napi::Value ScorerBinding::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto scorer = Open(env);
  auto* worker = new AttachWorker(env, scorer, AdIndexBinding::IndexOf(info[0], "index"));
  // A write on both: the scorer's own lock and the index's exclusive lock.
  indexWrites_ = AdIndexBinding::WritesOf(info[0]);
  worker->Keep(std::make_shared<PendingWrite>(writes_));
  worker->Keep(std::make_shared<PendingWrite>(indexWrites_));
  return worker->Start();
}

// search(users: Float32Array, headWeights: Float32Array, k, options: { eligibleMask?: Uint8Array,
//   eligibleIds?: BigInt64Array, filter?: NativeCompiledFilter (attached scorers),
//   candidates?: BigInt64Array, candidatesPerUser?, threads, fused, rerankFactor?, device (0 cpu, 1 gpu),
//   gpuDevice }): Promise<{ids, scores, counts}>
Napi::Value ScorerBinding::Search(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto scorer = Open(env);
  auto users = TypedArrayArg<float>(info[0], "users");
  auto weights = TypedArrayArg<float>(info[1], "headWeights");
  ScorerRequest r;
  r.nu = UsersOf(env, users, *scorer);
  CheckWeights(env, weights, *scorer);
  r.users = users.data;
  r.headWeights = weights.data;
  r.k = IntArg(info[2], "k", 1, 1 << 24);
  Napi::Object o = ObjectArg(info[3], "options");
  r.threads = IntArg(o.Get("threads"), "threads", 0, 4096);
  r.fused = o.Get("fused").ToBoolean().Value();
  if (!o.Get("rerankFactor").IsUndefined()) r.rerankFactor = IntArg(o.Get("rerankFactor"), "rerankFactor", 1, kMaxRerankFactor);
  r.device = IntArg(o.Get("device"), "device", 0, 1) == 1 ? Device::Gpu : Device::Cpu;
  r.gpuDevice = IntArg(o.Get("gpuDevice"), "gpuDevice", 0, 1024);
  r.cancel.word = CancelWord(o);
  std::vector<std::shared_ptr<const void>> copies{users.owner, weights.owner};  // r points into them
  Napi::Value mask = o.Get("eligibleMask");
  if (!mask.IsUndefined()) {
    auto bytes = TypedArrayArg<uint8_t>(mask, "eligibleMask");
    r.eligibleMask = bytes.data;
    r.eligibleMaskLength = bytes.length;
    copies.push_back(bytes.owner);
  }
  Napi::Value eligibleIds = o.Get("eligibleIds");
  if (!eligibleIds.IsUndefined()) {
    auto ids = TypedArrayArg<int64_t>(eligibleIds, "eligibleIds");
    r.eligibleIds = ids.data;
    r.eligibleIdCount = ids.length;
    copies.push_back(ids.owner);
  }
  Napi::Value candidates = o.Get("candidates");
  if (!candidates.IsUndefined()) {
    auto ids = TypedArrayArg<int64_t>(candidates, "candidates");
    r.candidatesPerUser = IntArg(o.Get("candidatesPerUser"), "candidatesPerUser", 1, 1 << 24);
    if (ids.length != static_cast<size_t>(r.nu) * r.candidatesPerUser) {
      ThrowError(env, ErrorCode::DimensionMismatch, "Expected users x candidatesPerUser = " +
                                                        std::to_string(static_cast<size_t>(r.nu) * r.candidatesPerUser) +
                                                        " candidate ids but received " + std::to_string(ids.length));
    }
    r.candidates = ids.data;
    copies.push_back(ids.owner);
  }
  std::shared_ptr<const CompiledFilter> filter;
  Napi::Value filterArg = o.Get("filter");
  if (!filterArg.IsUndefined()) filter = FilterBinding::FilterOf(filterArg, "filter");
  if (r.device == Device::Cpu && Quiet(writes_) && Quiet(indexWrites_)) {
    // Pairs scored: the candidates, else the eligible ids, else every ad (a mask or filter only
    // skips ads of the full scan).
    const double pairs = r.candidates ? static_cast<double>(r.nu) * r.candidatesPerUser
                         : r.eligibleIds ? static_cast<double>(r.nu) * r.eligibleIdCount
                                         : static_cast<double>(r.nu) * static_cast<double>(scorer->size());
    if (WithinInlineBudget(pairs * scorer->flopsPerPair() / 2 + 16.0 * r.nu * r.k)) {
      ThreadLease lease(1, ThreadLease::IfFree{});
      if (lease.threads() > 0) {
        r.filter = filter.get();
        return SettledNow(env, [&] { return SearchResultToJs(env, scorer->search(r)); });
      }
    }
  }
  auto* worker = new SearchWorker(env, scorer, r);
  if (filter) worker->KeepFilter(std::move(filter));
  for (auto& copy : copies) worker->Keep(std::move(copy));
  // The cancel word is shared with JavaScript on purpose (never copied): keep its buffer alive.
  if (r.cancel.word != nullptr) worker->Pin(o.Get("cancel"));
  return worker->Start();
}

// score(users: Float32Array, headWeights: Float32Array, ids: BigInt64Array | null, threads): Promise<Float32Array>
Napi::Value ScorerBinding::Score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto scorer = Open(env);
  auto users = TypedArrayArg<float>(info[0], "users");
  auto weights = TypedArrayArg<float>(info[1], "headWeights");
  UsersOf(env, users, *scorer);
  CheckWeights(env, weights, *scorer);
  const bool all = info[2].IsNull() || info[2].IsUndefined();
  ArrayArg<int64_t> ids;
  if (!all) ids = TypedArrayArg<int64_t>(info[2], "ids");
  const int threads = IntArg(info[3], "threads", 0, 4096);
  return (new ScoreWorker(env, scorer, users, weights, ids, all, threads))->Start();
}

Napi::Value ScorerBinding::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->size()));
}

// info(): { simd, flopsPerPair, precision, reducedSimd, bytesPerAd }
Napi::Value ScorerBinding::Info(const Napi::CallbackInfo& info) {
  auto scorer = Open(info.Env());
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("simd", scorer->simdName());
  out.Set("flopsPerPair", scorer->flopsPerPair());
  out.Set("precision", precisionName(scorer->precision()));
  out.Set("reducedSimd", scorer->reducedSimdName());
  out.Set("bytesPerAd", static_cast<double>(scorer->bytesPerAd()));
  return out;
}

Napi::Value ScorerBinding::Close(const Napi::CallbackInfo& info) {
  scorer_.reset();
  return info.Env().Undefined();
}

}  // namespace cangen::bindings
