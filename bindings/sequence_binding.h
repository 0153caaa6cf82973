#pragma once
#include <napi.h>

#include <memory>

#include "sequence/sequence_encoder.h"

namespace cangen::bindings {

// JavaScript handle on a native SequenceEncoder. Workers hold their own shared_ptr, so close()
// while an encode runs is safe.
class SequenceEncoderBinding : public Napi::ObjectWrap<SequenceEncoderBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SequenceEncoderBinding(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<const SequenceEncoder> Open(Napi::Env env) const;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<const SequenceEncoder> encoder_;
};

}  // namespace cangen::bindings
