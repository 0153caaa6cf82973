#pragma once
#include <napi.h>

#include <memory>

#include "index/index.h"

namespace cangen::bindings {

// JavaScript handle on a native Index of any kind. Workers hold their own shared_ptr, so close()
// while a search runs is safe: the memory goes when the last of them finishes.
class IndexBinding : public Napi::ObjectWrap<IndexBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit IndexBinding(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<Index> Open(Napi::Env env) const;
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value IsTrained(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<Index> index_;
};

}  // namespace cangen::bindings
