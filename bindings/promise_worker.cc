#include "promise_worker.h"

#include <atomic>

#include "instance_data.h"

namespace cangen::bindings {

namespace {
std::atomic<uint64_t> inlineCalls{0};
}  // namespace

uint64_t InlineCalls() { return inlineCalls.load(std::memory_order_relaxed); }
void CountInlineCall() { inlineCalls.fetch_add(1, std::memory_order_relaxed); }

Napi::Promise SettleOnNextTurn(Napi::Env env, Napi::Value value, bool ok) {
  Napi::Function settle =
      ScriptFunction(env, &InstanceData::settleOnNextTurn,
                     "(value, ok) => new Promise((resolve, reject) => setImmediate(ok ? resolve : reject, value))");
  return settle.Call({value, Napi::Boolean::New(env, ok)}).As<Napi::Promise>();
}

}  // namespace cangen::bindings
