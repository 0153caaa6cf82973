#pragma once
#include <napi.h>

#include <memory>

#include "inline_work.h"
#include "scorer/scorer.h"

namespace cangen::bindings {

// JavaScript handle on a native Scorer. Workers hold their own shared_ptr, so close() while a
// search runs is safe.
class ScorerBinding : public Napi::ObjectWrap<ScorerBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ScorerBinding(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<Scorer> Open(Napi::Env env) const;
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);
  Napi::Value Score(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<Scorer> scorer_;
  // Writes in flight on the scorer, and on the index it is attached to (none: not attached).
  std::shared_ptr<WriteGate> writes_ = std::make_shared<WriteGate>();
  std::shared_ptr<WriteGate> indexWrites_;
};

}  // namespace cangen::bindings
