#pragma once
#include <napi.h>

#include <memory>

#include "sequence/sequence_encoder.h"
#include "sequence/session_cache.h"

namespace cangen::bindings {

// JavaScript handle on a native SequenceEncoder. Workers hold their own shared_ptr, so close()
// while an encode runs is safe.
class SequenceEncoderBinding : public Napi::ObjectWrap<SequenceEncoderBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SequenceEncoderBinding(const Napi::CallbackInfo& info);
  // The open encoder of a NativeSequenceEncoder argument; throws a TypeError for anything else.
  static std::shared_ptr<const SequenceEncoder> EncoderOf(const Napi::Value& value, const char* name);

 private:
  std::shared_ptr<const SequenceEncoder> Open(Napi::Env env) const;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<const SequenceEncoder> encoder_;
};

// JavaScript handle on a native SequenceSessionCache over an encoder (which it keeps alive).
class SequenceSessionsBinding : public Napi::ObjectWrap<SequenceSessionsBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SequenceSessionsBinding(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SequenceSessionCache> Open(Napi::Env env) const;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Forget(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<SequenceSessionCache> cache_;
};

}  // namespace cangen::bindings
