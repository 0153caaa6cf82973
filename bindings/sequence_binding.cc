#include "sequence_binding.h"

#include <functional>
#include <string>
#include <vector>

#include "arrays.h"
#include "errors.h"
#include "instance_data.h"
#include "inline_work.h"
#include "promise_worker.h"

namespace cangen::bindings {

namespace {

// The model object lib/sequence builds from config.json and model.safetensors (lib/sequence/model.ts):
// { kind, dim, heads, maxLen, shortWindow, timeBuckets, useTimes, longTerm, interests,
//   normalizeQuery, numItems, numActions, layers, featuresPerItem, featureIds?: Int32Array,
//   tensors: { [name]: Float32Array } } with the tensor names of docs/TRAINING.md.
class ModelReader {
 public:
  explicit ModelReader(const Napi::Value& spec) {
    if (!spec.IsObject()) throw Napi::TypeError::New(spec.Env(), "Expected an object for model");
    spec_ = spec.As<Napi::Object>();
    Napi::Value tensors = spec_.Get("tensors");
    if (!tensors.IsObject()) throw Napi::TypeError::New(spec.Env(), "Expected an object for model.tensors");
    tensors_ = tensors.As<Napi::Object>();
  }
  int Int(const char* name, int min, int max) const { return IntArg(spec_.Get(name), name, min, max); }
  bool Bool(const char* name) const { return spec_.Get(name).ToBoolean().Value(); }
  std::string String(const char* name) const {
    Napi::Value v = spec_.Get(name);
    if (!v.IsString()) throw Napi::TypeError::New(spec_.Env(), std::string("Expected a string for model.") + name);
    return v.As<Napi::String>();
  }
  // The named tensor, or empty when the model does not have it (the core's validation says which is missing).
  std::vector<float> Tensor(const std::string& name) const {
    Napi::Value v = tensors_.Get(name);
    if (v.IsUndefined()) return {};
    auto a = TypedArrayArg<float>(v, name.c_str());
    return std::vector<float>(a.data, a.data + a.length);
  }
  LinearWeights Linear(const std::string& prefix, int in, int out) const {
    return LinearWeights{in, out, Tensor(prefix + ".weight"), Tensor(prefix + ".bias")};
  }
  std::vector<int32_t> Ints(const char* name) const {
    Napi::Value v = spec_.Get(name);
    if (v.IsUndefined()) return {};
    auto a = TypedArrayArg<int32_t>(v, name);
    return std::vector<int32_t>(a.data, a.data + a.length);
  }

 private:
  Napi::Object spec_, tensors_;
};

SequenceModel ModelFromJs(const Napi::Value& spec) {
  ModelReader r(spec);
  SequenceModel m;
  const std::string kind = r.String("kind");
  if (kind != "hstu" && kind != "sasrec") {
    throw Error(ErrorCode::InvalidArgument, "Expected model.kind 'hstu' or 'sasrec' but received '" + kind + "'");
  }
  m.kind = kind == "hstu" ? SequenceKind::Hstu : SequenceKind::SasRec;
  m.dim = r.Int("dim", 1, 65536);
  const int d = m.dim;
  m.heads = r.Int("heads", 1, 65536);
  m.maxLen = r.Int("maxLen", 1, 1 << 20);
  m.shortWindow = r.Int("shortWindow", 0, 1 << 20);
  m.timeBuckets = r.Int("timeBuckets", 0, 1 << 20);
  m.useTimes = r.Bool("useTimes");
  m.longTerm = r.Bool("longTerm");
  m.interests = r.Int("interests", 1, 1024);
  m.normalizeQuery = r.Bool("normalizeQuery");
  m.numItems = r.Int("numItems", 0, INT32_MAX - 1);
  m.numActions = r.Int("numActions", 0, INT32_MAX - 1);
  const int layers = r.Int("layers", 1, 1024);
  m.itemIdWeight = r.Tensor("items.id.weight");
  m.featureWeight = r.Tensor("items.features.weight");
  m.featureIds = r.Ints("featureIds");
  m.featuresPerItem = m.featureIds.empty() ? 0 : r.Int("featuresPerItem", 1, 1 << 20);
  m.actionWeight = r.Tensor("actions.weight");
  for (int l = 0; l < layers; ++l) {
    const std::string i = std::to_string(l);
    if (m.kind == SequenceKind::Hstu) {
      const std::string p = "encoder.layers." + i;
      m.hstuLayers.push_back({r.Linear(p + ".uvqk", d, 4 * d), r.Linear(p + ".out", d, d), r.Tensor(p + ".bias.position"),
                              r.Tensor(p + ".bias.time")});
    } else {
      const std::string p = "encoder.blocks." + i;
      m.sasrecBlocks.push_back({r.Tensor(p + ".attn_norm.weight"), r.Tensor(p + ".attn_norm.bias"),
                                r.Linear(p + ".attn.qkv", d, 3 * d), r.Linear(p + ".attn.out", d, d),
                                r.Tensor(p + ".ffn_norm.weight"), r.Tensor(p + ".ffn_norm.bias"),
                                r.Linear(p + ".ffn_in", d, 4 * d), r.Linear(p + ".ffn_out", 4 * d, d)});
    }
  }
  m.position = r.Tensor("encoder.position.weight");
  m.finalNormGamma = r.Tensor("encoder.final_norm.weight");
  m.finalNormBeta = r.Tensor("encoder.final_norm.bias");
  if (m.longTerm) {
    m.longScore = r.Tensor("long.score.weight");
    m.longProj = r.Linear("long.proj", d, d);
    m.fuseGate = r.Linear("fuse.gate", 2 * d, d);
  }
  if (m.interests > 1) m.interestProj = r.Linear("interests", d, m.interests * d);
  return m;
}

// The histories of encode(items, offsets, actions, times, ...) as a batch, with the copies it points into.
struct BatchArg {
  SequenceBatch batch;
  std::vector<std::shared_ptr<const void>> owners;
};

BatchArg BatchFromJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto items = TypedArrayArg<int32_t>(info[0], "items");
  auto offsets = TypedArrayArg<uint32_t>(info[1], "offsets");
  if (offsets.length < 1) ThrowError(env, ErrorCode::InvalidArgument, "Expected users + 1 offsets but received none");
  const bool hasActions = !(info[2].IsNull() || info[2].IsUndefined());
  const bool hasTimes = !(info[3].IsNull() || info[3].IsUndefined());
  ArrayArg<int32_t> actions;
  ArrayArg<double> times;
  if (hasActions) actions = TypedArrayArg<int32_t>(info[2], "actions");
  if (hasTimes) times = TypedArrayArg<double>(info[3], "times");
  if ((hasActions && actions.length != items.length) || (hasTimes && times.length != items.length)) {
    ThrowError(env, ErrorCode::DimensionMismatch, "Expected actions and times of the items' length " + std::to_string(items.length));
  }
  BatchArg arg;
  arg.batch.users = static_cast<int64_t>(offsets.length) - 1;
  arg.batch.offsets = offsets.data;
  arg.batch.events = items.length;
  arg.batch.items = items.data;
  arg.batch.actions = hasActions ? actions.data : nullptr;
  arg.batch.times = hasTimes ? times.data : nullptr;
  for (auto* owner : {&items.owner, &offsets.owner, &actions.owner, &times.owner}) {
    if (*owner) arg.owners.push_back(std::move(*owner));
  }
  return arg;
}

// Encodes a batch through `encode(batch, out)` off the main thread and resolves with the queries.
class EncodeWorker : public PromiseWorker {
 public:
  using Encode = std::function<void(const SequenceBatch&, float*)>;
  EncodeWorker(Napi::Env env, BatchArg arg, size_t outputs, Encode encode)
      : PromiseWorker(env), batch_(arg.batch), outputs_(outputs), encode_(std::move(encode)) {
    for (auto& owner : arg.owners) Keep(std::move(owner));
  }

 private:
  void Run() override {
    queries_.resize(outputs_);
    encode_(batch_, queries_.data());
  }
  Napi::Value Result(Napi::Env env) override { return CopyToTypedArray(env, queries_); }
  SequenceBatch batch_;
  size_t outputs_;
  Encode encode_;
  std::vector<float> queries_;
};

// A call whose sessions hold all but a few events (an append) costs less than the hop to a worker
// thread and back (tens of microseconds): within the inline budget (inline_work.h), it runs on the
// main thread.

bool RunsInline(const SequenceSessionCache& cache, const std::vector<std::string>& users, const SequenceBatch& batch) {
  try {
    return WithinInlineBudget(cache.plannedMacs(users, batch));
  } catch (const Error&) {
    return false;  // invalid input: the worker rejects with the error
  }
}

size_t OutputsOf(const SequenceBatch& batch, const SequenceEncoder& encoder) {
  return static_cast<size_t>(batch.users) * encoder.interests() * encoder.dim();
}

}  // namespace

Napi::Function SequenceEncoderBinding::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeSequenceEncoder",
                                 {InstanceMethod<&SequenceEncoderBinding::Encode>("encode"),
                                  InstanceMethod<&SequenceEncoderBinding::Close>("close")});
  GetInstanceData(env).sequenceEncoderConstructor = Napi::Persistent(f);
  return f;
}

// new NativeSequenceEncoder(model)
SequenceEncoderBinding::SequenceEncoderBinding(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SequenceEncoderBinding>(info) {
  Napi::Env env = info.Env();
  encoder_ = Guard(env, [&] { return std::make_shared<const SequenceEncoder>(ModelFromJs(info[0])); });
}

std::shared_ptr<const SequenceEncoder> SequenceEncoderBinding::EncoderOf(const Napi::Value& value, const char* name) {
  return UnwrapHandle<SequenceEncoderBinding>(value, &InstanceData::sequenceEncoderConstructor, "NativeSequenceEncoder", name)
      ->Open(value.Env());
}

std::shared_ptr<const SequenceEncoder> SequenceEncoderBinding::Open(Napi::Env env) const {
  if (!encoder_) ThrowError(env, ErrorCode::Closed, "This sequence encoder is closed: load the model again to encode");
  return encoder_;
}

// encode(items: Int32Array, offsets: Uint32Array, actions: Int32Array | null, times: Float64Array | null,
//   threads, device: 0 cpu | 1 gpu, gpuDevice): Promise<Float32Array> (users x interests x dim)
Napi::Value SequenceEncoderBinding::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto encoder = Open(env);
  BatchArg arg = BatchFromJs(info);
  const int threads = IntArg(info[4], "threads", 0, 4096);
  const bool onGpu = IntArg(info[5], "device", 0, 1) == 1;
  const int gpuDevice = IntArg(info[6], "gpuDevice", 0, 1024);
  const size_t outputs = OutputsOf(arg.batch, *encoder);
  auto encode = [encoder, threads, onGpu, gpuDevice](const SequenceBatch& batch, float* out) {
    if (onGpu) encoder->encodeOnGpu(batch, out, gpuDevice, threads);
    else encoder->encode(batch, out, threads);
  };
  return (new EncodeWorker(env, std::move(arg), outputs, encode))->Start();
}

Napi::Value SequenceEncoderBinding::Close(const Napi::CallbackInfo& info) {
  encoder_.reset();
  return info.Env().Undefined();
}

Napi::Function SequenceSessionsBinding::Define(Napi::Env env) {
  return DefineClass(env, "NativeSequenceSessions",
                     {InstanceMethod<&SequenceSessionsBinding::Encode>("encode"),
                      InstanceMethod<&SequenceSessionsBinding::Forget>("forget"),
                      InstanceMethod<&SequenceSessionsBinding::Stats>("stats"),
                      InstanceMethod<&SequenceSessionsBinding::Close>("close")});
}

// new NativeSequenceSessions(encoder: NativeSequenceEncoder, maxBytes)
SequenceSessionsBinding::SequenceSessionsBinding(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SequenceSessionsBinding>(info) {
  Napi::Env env = info.Env();
  auto encoder = SequenceEncoderBinding::EncoderOf(info[0], "encoder");
  if (!info[1].IsNumber() || !(info[1].As<Napi::Number>().DoubleValue() >= 0)) {
    throw Napi::TypeError::New(env, "Expected a non-negative number for maxBytes");
  }
  const auto maxBytes = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  cache_ = Guard(env, [&] { return std::make_shared<SequenceSessionCache>(encoder, maxBytes); });
}

std::shared_ptr<SequenceSessionCache> SequenceSessionsBinding::Open(Napi::Env env) const {
  if (!cache_) ThrowError(env, ErrorCode::Closed, "These sequence sessions are closed: open new ones to encode");
  return cache_;
}

static std::vector<std::string> StringsArg(const Napi::Value& value, const char* name) {
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), std::string("Expected an array of strings for ") + name);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> out(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(value.Env(), std::string("Expected an array of strings for ") + name);
    out[i] = v.As<Napi::String>();
  }
  return out;
}

// encode(items, offsets, actions, times, threads, users: string[]): Promise<Float32Array>
Napi::Value SequenceSessionsBinding::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto cache = Open(env);
  BatchArg arg = BatchFromJs(info);
  const int threads = IntArg(info[4], "threads", 0, 4096);
  auto users = std::make_shared<std::vector<std::string>>(StringsArg(info[5], "users"));
  const size_t outputs = OutputsOf(arg.batch, cache->encoder());
  if (RunsInline(*cache, *users, arg.batch)) {
    return SettledNow(env, [&] {
      std::vector<float> queries(outputs);
      cache->encodeHere(*users, arg.batch, queries.data());
      return CopyToTypedArray(env, queries);
    });
  }
  auto encode = [cache, users, threads](const SequenceBatch& batch, float* out) { cache->encode(*users, batch, out, threads); };
  return (new EncodeWorker(env, std::move(arg), outputs, encode))->Start();
}

// forget(users: string[])
Napi::Value SequenceSessionsBinding::Forget(const Napi::CallbackInfo& info) {
  Open(info.Env())->forget(StringsArg(info[0], "users"));
  return info.Env().Undefined();
}

// stats(): { sessions, bytes, maxBytes, reusedEvents, encodedEvents, evictions }
Napi::Value SequenceSessionsBinding::Stats(const Napi::CallbackInfo& info) {
  const SessionCacheStats s = Open(info.Env())->stats();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("sessions", static_cast<double>(s.sessions));
  out.Set("bytes", static_cast<double>(s.bytes));
  out.Set("maxBytes", static_cast<double>(s.maxBytes));
  out.Set("reusedEvents", static_cast<double>(s.reusedEvents));
  out.Set("encodedEvents", static_cast<double>(s.encodedEvents));
  out.Set("evictions", static_cast<double>(s.evictions));
  return out;
}

Napi::Value SequenceSessionsBinding::Close(const Napi::CallbackInfo& info) {
  cache_.reset();
  return info.Env().Undefined();
}

}  // namespace cangen::bindings
