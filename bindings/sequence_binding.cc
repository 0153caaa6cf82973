#include "sequence_binding.h"

#include <string>
#include <vector>

#include "arrays.h"
#include "errors.h"
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

class EncodeWorker : public PromiseWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<const SequenceEncoder> encoder, SequenceBatch batch, int threads)
      : PromiseWorker(env), encoder_(std::move(encoder)), batch_(batch), threads_(threads) {}

 private:
  void Run() override {
    queries_.resize(static_cast<size_t>(batch_.users) * encoder_->interests() * encoder_->dim());
    encoder_->encode(batch_, queries_.data(), threads_);
  }
  Napi::Value Result(Napi::Env env) override { return CopyToTypedArray(env, queries_); }
  std::shared_ptr<const SequenceEncoder> encoder_;
  SequenceBatch batch_;
  int threads_;
  std::vector<float> queries_;
};

}  // namespace

Napi::Function SequenceEncoderBinding::Define(Napi::Env env) {
  return DefineClass(env, "NativeSequenceEncoder",
                     {InstanceMethod<&SequenceEncoderBinding::Encode>("encode"),
                      InstanceMethod<&SequenceEncoderBinding::Close>("close")});
}

// new NativeSequenceEncoder(model)
SequenceEncoderBinding::SequenceEncoderBinding(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SequenceEncoderBinding>(info) {
  Napi::Env env = info.Env();
  encoder_ = Guard(env, [&] { return std::make_shared<const SequenceEncoder>(ModelFromJs(info[0])); });
}

std::shared_ptr<const SequenceEncoder> SequenceEncoderBinding::Open(Napi::Env env) const {
  if (!encoder_) ThrowError(env, ErrorCode::Closed, "This sequence encoder is closed: load the model again to encode");
  return encoder_;
}

// encode(items: Int32Array, offsets: Uint32Array, actions: Int32Array | null, times: Float64Array | null,
//   threads): Promise<Float32Array> (users x interests x dim)
Napi::Value SequenceEncoderBinding::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto encoder = Open(env);
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
  const int threads = IntArg(info[4], "threads", 0, 4096);
  SequenceBatch batch;
  batch.users = static_cast<int64_t>(offsets.length) - 1;
  batch.offsets = offsets.data;
  batch.events = items.length;
  batch.items = items.data;
  batch.actions = hasActions ? actions.data : nullptr;
  batch.times = hasTimes ? times.data : nullptr;
  auto* worker = new EncodeWorker(env, encoder, batch, threads);
  for (auto* owner : {&items.owner, &offsets.owner, &actions.owner, &times.owner}) {
    if (*owner) worker->Keep(std::move(*owner));
  }
  return worker->Start();
}

Napi::Value SequenceEncoderBinding::Close(const Napi::CallbackInfo& info) {
  encoder_.reset();
  return info.Env().Undefined();
}

}  // namespace cangen::bindings
