// Host side of HSTU on a CUDA device (sequence/gpu_hstu.h; device code in sequence_kernel.cuh).
// The model is uploaded once: the item and action tables, and every layer's weights in the CPU
// Linear's transposed layout, in one buffer addressed by offsets. Each call uploads the windows'
// token rows, actions, times and per-token first-token index, and runs, per batch of users:
//   embed -> per layer: LN -> uvqk (+ SiLU) -> attention (+ LN(a) * U) -> out (+= into x)
//   -> final LN (affine) of each user's last token -> copy the states back.
// Batches are cut by tokens so that the activations fit in a quarter of the free device memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "common/error.h"
#include "cuda/cuda_util.cuh"
#include "cuda/sequence_kernel.cuh"
#include "sequence/gpu_hstu.h"

namespace cangen::gpu {

namespace {

unsigned blocksFor(size_t work, unsigned threads) {
  return static_cast<unsigned>(std::min<size_t>((work + threads - 1) / threads, 1u << 20));
}

// Rows per launch of linearKernel: its grid's y dimension holds at most 65,535 tiles.
constexpr size_t kMaxTokensPerBatch = size_t{65535} * hstu::kTileRows;

}  // namespace

struct GpuHstu::State {
  explicit State(int d) : device(d) {}
  // The buffers below are freed on their own device, after the stream's work (cudaFree waits).
  ~State() { cudaSetDevice(device); }
  const int device;
  Stream stream;
  int dim = 0, heads = 0, maxLen = 0, window = 0, timeBuckets = 0, layers = 0;
  DeviceBuffer<float> table, actions, weights;
  // Per layer: uvqk weightT, uvqk bias, out weightT, out bias, position bias, time bias; then the final norm.
  std::vector<size_t> offsets;
  // Per call (grown as needed).
  DeviceBuffer<int32_t> rows, actionRows, firstToken, lastToken;
  DeviceBuffer<double> times;
  DeviceBuffer<float> x, normed, uvqk, attended, states;

  const float* at(size_t i) const { return weights.data() + offsets[i]; }
};

GpuHstu::GpuHstu(int device, const ::cangen::sequence::HstuEncoder& model, const std::vector<float>& itemTable,
                 const std::vector<float>& actionWeight) {
  const std::string reason = unusableDeviceReason(device);
  if (!reason.empty()) throw Error(ErrorCode::NoDevice, reason);
  CANGEN_CUDA_CHECK(cudaSetDevice(device));
  state_ = std::make_unique<State>(device);
  State& s = *state_;
  s.dim = model.dim(), s.heads = model.heads(), s.maxLen = model.maxLen(), s.window = model.window();
  s.timeBuckets = model.timeBuckets(), s.layers = static_cast<int>(model.layers().size());
  std::vector<float> host;
  auto add = [&](const std::vector<float>& v) {
    s.offsets.push_back(host.size());
    host.insert(host.end(), v.begin(), v.end());
  };
  for (const auto& layer : model.layers()) {
    add(layer.uvqk.weightT()), add(layer.uvqk.bias()), add(layer.out.weightT()), add(layer.out.bias());
    add(layer.positionBias), add(layer.timeBias);
  }
  add(model.finalGamma()), add(model.finalBeta());
  const cudaStream_t stream = s.stream.get();
  upload(s.weights, host.data(), host.size(), stream);
  upload(s.table, itemTable.data(), itemTable.size(), stream);
  upload(s.actions, actionWeight.data(), actionWeight.size(), stream);
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
}

GpuHstu::~GpuHstu() = default;

int GpuHstu::device() const { return state_->device; }

void GpuHstu::lastStates(const HstuWindows& w, float* states) {
  State& s = *state_;
  const size_t users = w.offsets.empty() ? 0 : w.offsets.size() - 1;
  if (users == 0) return;
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();
  const int d = s.dim;
  const bool actions = !w.actions.empty(), times = !w.times.empty();

  // Tokens per batch: the activations (x, normed, uvqk, attended: 7d floats a token) in a quarter
  // of the free memory, at least one user's window, at most what one linear launch covers.
  size_t freeBytes = 0, totalBytes = 0;
  CANGEN_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
  const size_t perToken = 7 * static_cast<size_t>(d) * sizeof(float) + 3 * sizeof(int32_t) + sizeof(double);
  const size_t budget = std::min(kMaxTokensPerBatch, std::max<size_t>(freeBytes / 4 / perToken, static_cast<size_t>(s.maxLen)));

  std::vector<int32_t> firstToken, lastToken;
  for (size_t u0 = 0; u0 < users;) {
    size_t u1 = u0 + 1;
    while (u1 < users && w.offsets[u1 + 1] - w.offsets[u0] <= budget) ++u1;
    const size_t t0 = w.offsets[u0], tokens = w.offsets[u1] - t0, batchUsers = u1 - u0;
    const int nt = static_cast<int>(tokens), nu = static_cast<int>(batchUsers);
    firstToken.resize(tokens);
    lastToken.resize(batchUsers);
    for (size_t u = u0; u < u1; ++u) {
      const int32_t begin = static_cast<int32_t>(w.offsets[u] - t0), end = static_cast<int32_t>(w.offsets[u + 1] - t0);
      std::fill(firstToken.begin() + begin, firstToken.begin() + end, begin);
      lastToken[u - u0] = end - 1;
    }
    upload(s.rows, w.rows.data() + t0, tokens, stream, 1.5);
    if (actions) upload(s.actionRows, w.actions.data() + t0, tokens, stream, 1.5);
    if (times) upload(s.times, w.times.data() + t0, tokens, stream, 1.5);
    upload(s.firstToken, firstToken.data(), tokens, stream, 1.5);
    upload(s.lastToken, lastToken.data(), batchUsers, stream, 1.5);
    s.x.reserve(tokens * d, 1.5), s.normed.reserve(tokens * d, 1.5), s.uvqk.reserve(tokens * 4 * d, 1.5);
    s.attended.reserve(tokens * d, 1.5), s.states.reserve(batchUsers * d, 1.5);

    hstu::embedKernel<<<blocksFor(tokens * d, 256), 256, 0, stream>>>(s.table.data(), actions ? s.actions.data() : nullptr, s.rows.data(),
                                                                         actions ? s.actionRows.data() : nullptr, nt, d, s.x.data());
    CANGEN_CUDA_CHECK_LAUNCH("embedKernel");
    constexpr int kNormWarps = 8;
    auto layerNorm = [&](const float* in, const int32_t* source, int rows, const float* gamma, const float* beta, float* out) {
      hstu::layerNormKernel<<<(rows + kNormWarps - 1) / kNormWarps, kNormWarps * hstu::kWarp, 0, stream>>>(in, source, rows, d, gamma, beta, out);
      CANGEN_CUDA_CHECK_LAUNCH("layerNormKernel");
    };
    auto linear = [&](const float* in, int rows, int inWidth, const float* weightT, const float* bias, int outWidth, int epilogue,
                      const int32_t* target, float* out) {
      const dim3 grid((outWidth + hstu::kTileCols - 1) / hstu::kTileCols, (rows + hstu::kTileRows - 1) / hstu::kTileRows);
      hstu::linearKernel<<<grid, hstu::kLinearThreads, 0, stream>>>(in, rows, inWidth, weightT, bias, outWidth, epilogue, target, out);
      CANGEN_CUDA_CHECK_LAUNCH("linearKernel");
    };
    for (int l = 0; l < s.layers; ++l) {
      const size_t base = static_cast<size_t>(l) * 6;
      layerNorm(s.x.data(), nullptr, nt, nullptr, nullptr, s.normed.data());
      linear(s.normed.data(), nt, d, s.at(base), s.at(base + 1), 4 * d, hstu::kStoreSilu, nullptr, s.uvqk.data());
      // Every layer but the last needs every position; the last only each user's last query.
      const bool last = l + 1 == s.layers;
      hstu::AttentionArgs a{};
      a.uvqk = s.uvqk.data();
      a.firstToken = s.firstToken.data();
      a.queries = last ? s.lastToken.data() : nullptr;
      a.times = times ? s.times.data() : nullptr;
      a.positionBias = s.at(base + 4);
      a.timeBias = s.at(base + 5);
      a.rows = last ? nu : nt;
      a.dim = d, a.heads = s.heads, a.maxLen = s.maxLen, a.window = s.window, a.timeBuckets = s.timeBuckets;
      a.scale = 1.0f / static_cast<float>(s.maxLen);
      a.attended = s.attended.data();
      hstu::attentionKernel<<<static_cast<unsigned>(a.rows), hstu::kAttentionThreads, 0, stream>>>(a);
      CANGEN_CUDA_CHECK_LAUNCH("attentionKernel");
      linear(s.attended.data(), a.rows, d, s.at(base + 2), s.at(base + 3), d, hstu::kAddToRows, a.queries, s.x.data());
    }
    const size_t final = static_cast<size_t>(s.layers) * 6;
    layerNorm(s.x.data(), s.lastToken.data(), nu, s.at(final), s.at(final + 1), s.states.data());
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(states + u0 * d, s.states.data(), batchUsers * d * sizeof(float), cudaMemcpyDeviceToHost, stream));
    // The host vectors above are reused by the next batch: its uploads must not overtake this one's.
    CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
    u0 = u1;
  }
}

}  // namespace cangen::gpu
