// SequenceEncoder::encodeOnGpu: the host half of the CUDA path. The windows are chosen here with
// windowOf (the CPU path's rule: unknown ids skipped, the most recent maxLen kept, the zero padding
// token for a user with none), the short-term encoder (HSTU or SASRec) runs on the device for the
// whole batch (gpu_encoder.h), and the long-term fusion and interest heads run here on the
// device's last states with the CPU path's own code: they are one small d x d product per user,
// not worth a device round trip.
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "cuda/gpu_flat_search.h"
#include "sequence/gpu_encoder.h"
#include "sequence/sequence_encoder.h"

namespace cangen {

namespace {

// Throws Error(NoDevice) unless CUDA device `device` is usable.
void requireDevice(int device) {
  const int count = gpu::deviceCount();
  if (count == 0) throw Error(ErrorCode::NoDevice, gpu::describeDevice(0));
  if (device < 0 || device >= count) {
    throw Error(ErrorCode::NoDevice, "no CUDA device " + std::to_string(device) + " (" + std::to_string(count) + " found)");
  }
}

}  // namespace

void SequenceEncoder::encodeOnGpu(const SequenceBatch& b, float* out, int gpuDevice, int threads) const {
  validateSequenceBatch(b);
  requireDevice(gpuDevice);
  if (b.users == 0) return;
  const int d = dim_;
  ThreadLease lease(requestedThreads(threads, 0));
  std::vector<std::vector<uint32_t>> windows(static_cast<size_t>(b.users));
  parallelFor(lease.threads(), b.users, 64, [&](int64_t u) { windows[u] = windowOf(b, u); });

  const bool actions = b.actions != nullptr && !actionWeight_.empty();
  const bool times = usesTimes_ && b.times != nullptr;
  gpu::GpuWindows w;
  w.offsets.reserve(static_cast<size_t>(b.users) + 1);
  w.offsets.push_back(0);
  for (const auto& events : windows) {
    if (events.empty()) {  // the padding window: one zero token at time 0, without a position
      w.rows.push_back(-1);
      if (actions) w.actions.push_back(0);
      if (times) w.times.push_back(0.0);
      if (sasrec_) w.positions.push_back(-1);
    }
    const int n = static_cast<int>(events.size());
    for (int j = 0; j < n; ++j) {
      const uint32_t e = events[j];
      w.rows.push_back(b.items[e]);
      if (actions) w.actions.push_back(b.actions[e] >= 0 && b.actions[e] <= numActions_ ? b.actions[e] : 0);
      if (times) w.times.push_back(b.times[e]);
      if (sasrec_) w.positions.push_back(maxLen_ - n + j);  // the last event takes row maxLen - 1, as sasrec.cc
    }
    w.offsets.push_back(static_cast<uint32_t>(w.rows.size()));
  }

  std::vector<float> states(static_cast<size_t>(b.users) * d);
  {
    std::lock_guard<std::mutex> lock(gpuMutex_);
    try {
      if (!gpu_ || gpu_->device() != gpuDevice) {
        gpu_.reset();
        gpu_ = hstu_ ? std::make_unique<gpu::GpuSequenceEncoder>(gpuDevice, *hstu_, itemTable_, actionWeight_)
                     : std::make_unique<gpu::GpuSequenceEncoder>(gpuDevice, *sasrec_, itemTable_, actionWeight_);
      }
      gpu_->lastStates(w, states.data());
    } catch (const Error& e) {
      if (e.code() == ErrorCode::NoDevice) gpu_.reset();  // a lost context: a later call starts afresh
      throw;
    }
  }

  const size_t perUser = static_cast<size_t>(interests_) * d;
  parallelFor(lease.threads(), b.users, 16, [&](int64_t u) {
    float* state = states.data() + static_cast<size_t>(u) * d;
    if (longProj_) {
      const std::vector<uint32_t>& events = windows[u];
      const bool padding = events.empty();
      const int n = padding ? 1 : static_cast<int>(events.size());
      std::vector<float> tokens(static_cast<size_t>(n) * d, 0.0f);
      fillTokens(b, events, 0, tokens.data());
      fuseLongTerm(tokens.data(), n, padding, state);
    }
    finishQueries(state, out + u * perUser);
  });
}

}  // namespace cangen
