#pragma once
#include <napi.h>

#include <memory>

#include "ann/ad_index.h"
#include "inline_work.h"
#include "promise_worker.h"

namespace cangen::bindings {

// A compiled eligibility filter, kept current by its index's writes. Dropping the JavaScript
// object (garbage collection) drops the filter, and the index stops maintaining it.
class FilterBinding : public Napi::ObjectWrap<FilterBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit FilterBinding(const Napi::CallbackInfo& info);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<const CompiledFilter> filter);
  // The filter behind a NativeFilter handle `value` (a TypeError for anything else).
  static std::shared_ptr<const CompiledFilter> FilterOf(const Napi::Value& value, const char* name);

  std::shared_ptr<const CompiledFilter> filter;

 private:
  Napi::Value Count(const Napi::CallbackInfo& info);
};

// JavaScript handle on an AdIndex (every index kind). Workers hold their own shared_ptr.
class AdIndexBinding : public Napi::ObjectWrap<AdIndexBinding> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AdIndexBinding(const Napi::CallbackInfo& info);
  static Napi::Value Load(const Napi::CallbackInfo& info);
  // The open index behind a NativeAdIndex handle `value` (a TypeError for anything else).
  static std::shared_ptr<AdIndex> IndexOf(const Napi::Value& value, const char* name);
  // The writes in flight on that index (a scorer attached to it searches under its lock).
  static std::shared_ptr<WriteGate> WritesOf(const Napi::Value& value);

 private:
  std::shared_ptr<AdIndex> Open(Napi::Env env) const;
  // Marks `worker` as a write on this index until it has finished (no search runs inline meanwhile).
  PromiseWorker* Write(PromiseWorker* worker) const;
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Upsert(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value SetAttributes(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);
  Napi::Value CompileFilter(const Napi::CallbackInfo& info);
  Napi::Value EligibleIds(const Napi::CallbackInfo& info);
  Napi::Value Compact(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Generation(const Napi::CallbackInfo& info);
  Napi::Value IsTrained(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<AdIndex> index_;
  std::shared_ptr<WriteGate> writes_ = std::make_shared<WriteGate>();
};

}  // namespace cangen::bindings
