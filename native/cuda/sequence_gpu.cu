// Host side of the sequence encoders on a CUDA device (sequence/gpu_encoder.h; device code in
// sequence_kernel.cuh). The model is uploaded once: the item, action (and SASRec position)
// tables, and every layer's weights in the CPU Linear's transposed layout, in one buffer addressed
// by offsets. Each call uploads the windows' token rows, actions, times or positions and
// per-token first-token index, and runs, per batch of users, one launch sequence:
//   embed -> per layer (HSTU or SASRec, gpu_encoder.h) -> final LN (affine) of each user's last
//   token -> copy the states back.
// Batches are cut by tokens so that the activations fit in a quarter of the free device memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "cuda/cuda_util.cuh"
#include "cuda/sequence_kernel.cuh"
#include "sequence/gpu_encoder.h"

namespace cangen::gpu {

namespace k = sequence_kernels;

namespace {

unsigned blocksFor(size_t work, unsigned threads) {
  return static_cast<unsigned>(std::min<size_t>((work + threads - 1) / threads, 1u << 20));
}

// Rows per launch of linearKernel: its grid's y dimension holds at most 65,535 tiles.
constexpr size_t kMaxTokensPerBatch = size_t{65535} * k::kTileRows;

}  // namespace

struct GpuSequenceEncoder::State {
  explicit State(int d) : device(d) {}
  // The buffers below are freed on their own device, after the stream's work (cudaFree waits).
  ~State() { cudaSetDevice(device); }
  const int device;
  Stream stream;
  bool sasrec = false;
  int dim = 0, heads = 0, maxLen = 0, window = 0, timeBuckets = 0, layers = 0;
  DeviceBuffer<float> table, actions, weights;
  // Into weights, per layer (kPerLayer each), then the final norm's gamma and beta (and SASRec's
  // position table): HSTU uvqk weightT, bias, out weightT, bias, position bias, time bias; SASRec
  // attn gamma, beta, qkv weightT, bias, out weightT, bias, ffn gamma, beta, ffnIn weightT, bias,
  // ffnOut weightT, bias.
  std::vector<size_t> offsets;
  // Per call (grown as needed).
  DeviceBuffer<int32_t> rows, actionRows, positions, firstToken, lastToken;
  DeviceBuffer<double> times;
  DeviceBuffer<float> x, normed, wide, attended, states;

  const float* at(size_t i) const { return weights.data() + offsets[i]; }
  size_t perLayer() const { return sasrec ? 12 : 6; }
  const float* finalNorm(int which) const { return at(layers * perLayer() + which); }
  void add(std::vector<float>& host, const std::vector<float>& v) {
    offsets.push_back(host.size());
    host.insert(host.end(), v.begin(), v.end());
  }
  void upload(const std::vector<float>& host, const std::vector<float>& itemTable, const std::vector<float>& actionWeight) {
    const cudaStream_t s = stream.get();
    gpu::upload(weights, host.data(), host.size(), s);
    gpu::upload(table, itemTable.data(), itemTable.size(), s);
    gpu::upload(actions, actionWeight.data(), actionWeight.size(), s);
    CANGEN_CUDA_CHECK(cudaStreamSynchronize(s));
  }
};

namespace {

// Makes `device` current; throws Error(NoDevice) when it is not usable.
void selectDevice(int device) {
  const std::string reason = unusableDeviceReason(device);
  if (!reason.empty()) throw Error(ErrorCode::NoDevice, reason);
  CANGEN_CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace

GpuSequenceEncoder::GpuSequenceEncoder(int device, const ::cangen::sequence::HstuEncoder& model, const std::vector<float>& itemTable,
                                       const std::vector<float>& actionWeight)
{
  selectDevice(device);
  state_ = std::make_unique<State>(device);
  State& s = *state_;
  s.dim = model.dim(), s.heads = model.heads(), s.maxLen = model.maxLen(), s.window = model.window();
  s.timeBuckets = model.timeBuckets(), s.layers = static_cast<int>(model.layers().size());
  std::vector<float> host;
  for (const auto& layer : model.layers()) {
    s.add(host, layer.uvqk.weightT()), s.add(host, layer.uvqk.bias()), s.add(host, layer.out.weightT()), s.add(host, layer.out.bias());
    s.add(host, layer.positionBias), s.add(host, layer.timeBias);
  }
  s.add(host, model.finalGamma()), s.add(host, model.finalBeta());
  s.upload(host, itemTable, actionWeight);
}

GpuSequenceEncoder::GpuSequenceEncoder(int device, const ::cangen::sequence::SasRecEncoder& model, const std::vector<float>& itemTable,
                                       const std::vector<float>& actionWeight)
{
  selectDevice(device);
  state_ = std::make_unique<State>(device);
  State& s = *state_;
  s.sasrec = true;
  s.dim = model.dim(), s.heads = model.heads(), s.maxLen = model.maxLen(), s.window = model.window();
  s.layers = static_cast<int>(model.blocks().size());
  std::vector<float> host;
  for (const auto& b : model.blocks()) {
    s.add(host, b.attnGamma), s.add(host, b.attnBeta), s.add(host, b.qkv.weightT()), s.add(host, b.qkv.bias());
    s.add(host, b.out.weightT()), s.add(host, b.out.bias()), s.add(host, b.ffnGamma), s.add(host, b.ffnBeta);
    s.add(host, b.ffnIn.weightT()), s.add(host, b.ffnIn.bias()), s.add(host, b.ffnOut.weightT()), s.add(host, b.ffnOut.bias());
  }
  s.add(host, model.finalGamma()), s.add(host, model.finalBeta()), s.add(host, model.position());
  s.upload(host, itemTable, actionWeight);
}

GpuSequenceEncoder::~GpuSequenceEncoder() = default;

int GpuSequenceEncoder::device() const { return state_->device; }

void GpuSequenceEncoder::lastStates(const GpuWindows& w, float* states) {
  State& s = *state_;
  const size_t users = w.offsets.empty() ? 0 : w.offsets.size() - 1;
  if (users == 0) return;
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();
  const int d = s.dim;
  const bool actions = !w.actions.empty(), times = !s.sasrec && !w.times.empty();

  // Tokens per batch: the activations (x, normed, wide, attended: 7d floats a token) in a quarter
  // of the free memory, at least one user's window, at most what one linear launch covers.
  size_t freeBytes = 0, totalBytes = 0;
  CANGEN_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
  const size_t perToken = 7 * static_cast<size_t>(d) * sizeof(float) + 4 * sizeof(int32_t) + sizeof(double);
  const size_t budget = std::min(kMaxTokensPerBatch, std::max<size_t>(freeBytes / 4 / perToken, static_cast<size_t>(s.maxLen)));

  constexpr int kNormWarps = 8;
  auto layerNorm = [&](const float* in, const int32_t* source, int rows, const float* gamma, const float* beta, float* out) {
    k::layerNormKernel<<<(rows + kNormWarps - 1) / kNormWarps, kNormWarps * k::kWarp, 0, stream>>>(in, source, rows, d, gamma, beta, out);
    CANGEN_CUDA_CHECK_LAUNCH("layerNormKernel");
  };
  auto linear = [&](const float* in, int rows, int inWidth, size_t weightIndex, int outWidth, int epilogue, const int32_t* target, float* out) {
    const dim3 grid((outWidth + k::kTileCols - 1) / k::kTileCols, (rows + k::kTileRows - 1) / k::kTileRows);
    k::linearKernel<<<grid, k::kLinearThreads, 0, stream>>>(in, rows, inWidth, s.at(weightIndex), s.at(weightIndex + 1), outWidth, epilogue,
                                                           target, out);
    CANGEN_CUDA_CHECK_LAUNCH("linearKernel");
  };

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
    if (s.sasrec) upload(s.positions, w.positions.data() + t0, tokens, stream, 1.5);
    upload(s.firstToken, firstToken.data(), tokens, stream, 1.5);
    upload(s.lastToken, lastToken.data(), batchUsers, stream, 1.5);
    s.x.reserve(tokens * d, 1.5), s.normed.reserve(tokens * d, 1.5), s.wide.reserve(tokens * 4 * d, 1.5);
    s.attended.reserve(tokens * d, 1.5), s.states.reserve(batchUsers * d, 1.5);

    k::embedKernel<<<blocksFor(tokens * d, 256), 256, 0, stream>>>(
        s.table.data(), actions ? s.actions.data() : nullptr, s.rows.data(), actions ? s.actionRows.data() : nullptr,
        s.sasrec ? s.finalNorm(2) : nullptr, s.sasrec ? s.positions.data() : nullptr, nt, d, s.x.data());
    CANGEN_CUDA_CHECK_LAUNCH("embedKernel");
    for (int l = 0; l < s.layers; ++l) {
      const size_t base = static_cast<size_t>(l) * s.perLayer();
      // Every layer but the last needs every position; the last only each user's last query.
      const bool last = l + 1 == s.layers;
      const int32_t* queries = last ? s.lastToken.data() : nullptr;
      const int rows = last ? nu : nt;
      if (!s.sasrec) {
        layerNorm(s.x.data(), nullptr, nt, nullptr, nullptr, s.normed.data());
        linear(s.normed.data(), nt, d, base, 4 * d, k::kStoreSilu, nullptr, s.wide.data());
        k::AttentionArgs a{};
        a.uvqk = s.wide.data();
        a.firstToken = s.firstToken.data();
        a.queries = queries;
        a.times = times ? s.times.data() : nullptr;
        a.positionBias = s.at(base + 4);
        a.timeBias = s.at(base + 5);
        a.rows = rows;
        a.dim = d, a.heads = s.heads, a.maxLen = s.maxLen, a.window = s.window, a.timeBuckets = s.timeBuckets;
        a.scale = 1.0f / static_cast<float>(s.maxLen);
        a.attended = s.attended.data();
        k::attentionKernel<<<static_cast<unsigned>(rows), k::kAttentionThreads, 0, stream>>>(a);
        CANGEN_CUDA_CHECK_LAUNCH("attentionKernel");
        linear(s.attended.data(), rows, d, base + 2, d, k::kAddToRows, queries, s.x.data());
      } else {
        layerNorm(s.x.data(), nullptr, nt, s.at(base), s.at(base + 1), s.normed.data());
        linear(s.normed.data(), nt, d, base + 2, 3 * d, k::kStore, nullptr, s.wide.data());
        k::SoftmaxAttentionArgs a{};
        a.qkv = s.wide.data();
        a.firstToken = s.firstToken.data();
        a.queries = queries;
        a.rows = rows;
        a.dim = d, a.heads = s.heads, a.window = s.window;
        a.scale = 1.0f / std::sqrt(static_cast<float>(d / s.heads));
        a.context = s.attended.data();
        k::softmaxAttentionKernel<<<static_cast<unsigned>(rows), k::kAttentionThreads, 0, stream>>>(a);
        CANGEN_CUDA_CHECK_LAUNCH("softmaxAttentionKernel");
        linear(s.attended.data(), rows, d, base + 4, d, k::kAddToRows, queries, s.x.data());
        // The feed-forward half on the same rows; qkv is spent, so its buffer holds the inner layer.
        layerNorm(s.x.data(), queries, rows, s.at(base + 6), s.at(base + 7), s.normed.data());
        linear(s.normed.data(), rows, d, base + 8, 4 * d, k::kStoreGelu, nullptr, s.wide.data());
        linear(s.wide.data(), rows, 4 * d, base + 10, d, k::kAddToRows, queries, s.x.data());
      }
    }
    layerNorm(s.x.data(), s.lastToken.data(), nu, s.finalNorm(0), s.finalNorm(1), s.states.data());
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(states + u0 * d, s.states.data(), batchUsers * d * sizeof(float), cudaMemcpyDeviceToHost, stream));
    // The host vectors above are reused by the next batch: its uploads must not overtake this one's.
    CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
    u0 = u1;
  }
}

}  // namespace cangen::gpu
