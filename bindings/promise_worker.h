#pragma once
// One native call per operation, off the main thread: typed-array inputs are copied or private to
// the call (see ArrayArg in arrays.h), objects it uses are pinned, Run() does the work without touching JavaScript, Result() builds the value
// that resolves the Promise, and a native exception rejects it with the typed error.
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "errors.h"

namespace cangen::bindings {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "cangen"), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the worker and returns its Promise.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

  // Keeps a JavaScript object (a wrapped native object the worker uses) alive until it has finished.
  // Not for typed arrays: pinning does not stop a buffer from being transferred or resized.
  void Pin(const Napi::Value& value) { pinned_.push_back(Napi::Persistent(value.As<Napi::Object>())); }
  // Keeps an ArrayArg's copy or reference alive until the worker has finished.
  void Keep(std::shared_ptr<const void> owner) { kept_.push_back(std::move(owner)); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() final {
    try {
      Run();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = ErrorCode::Internal;
      SetError("Out of memory");
    } catch (const std::exception& e) {
      code_ = ErrorCode::Internal;
      SetError(e.what());
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& error) final {
    deferred_.Reject(MakeError(Env(), code_, error.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> pinned_;
  std::vector<std::shared_ptr<const void>> kept_;
  ErrorCode code_ = ErrorCode::Internal;
};

// Calls SettledNow has run on the main thread (limits().inlineCalls).
uint64_t InlineCalls();
void CountInlineCall();
// A Promise that settles with `value` (resolved, or rejected when !ok) from a setImmediate callback.
Napi::Promise SettleOnNextTurn(Napi::Env env, Napi::Value value, bool ok);

// Runs `work` (returning a Napi::Value) on the main thread now and returns a Promise settled
// with its result, or rejected with the typed error, as a PromiseWorker would: for calls smaller
// than the hop to a worker thread and back. The Promise settles on the event loop's next turn
// (setImmediate), as a worker's would, never within the caller's microtasks: a loop that awaits
// only such calls still lets timers, I/O and setImmediate callbacks run between them.
template <typename F>
Napi::Promise SettledNow(Napi::Env env, F&& work) {
  CountInlineCall();
  Napi::Value value;
  bool ok = true;
  try {
    value = work();
  } catch (const Napi::Error& e) {
    value = e.Value(), ok = false;
  } catch (const Error& e) {
    value = MakeError(env, e.code(), e.what()).Value(), ok = false;
  } catch (const std::bad_alloc&) {
    value = MakeError(env, ErrorCode::Internal, "Out of memory").Value(), ok = false;
  } catch (const std::exception& e) {
    value = MakeError(env, ErrorCode::Internal, e.what()).Value(), ok = false;
  }
  return SettleOnNextTurn(env, value, ok);
}

// A PromiseWorker made of two lambdas, for operations that need no class of their own: `work`
// runs off the main thread; `build` (optional) makes the resolved value on the main thread.
class Task : public PromiseWorker {
 public:
  using Work = std::function<void()>;
  using Build = std::function<Napi::Value(Napi::Env)>;
  Task(Napi::Env env, Work work, Build build = nullptr)
      : PromiseWorker(env), work_(std::move(work)), build_(std::move(build)) {}

 private:
  void Run() override { work_(); }
  Napi::Value Result(Napi::Env env) override { return build_ ? build_(env) : env.Undefined(); }
  Work work_;
  Build build_;
};

}  // namespace cangen::bindings
