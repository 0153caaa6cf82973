// Host side of the scorer's GPU scan: device copies of the ad planes and the model's shared
// layers, and the chunked score -> append -> cut loop (device code in scorer_kernel.cuh):
//   each user owns a candidate buffer of capacity k + chunk, a count and a threshold (-inf);
//   per chunk of ads, scorerScanKernel appends every (score, slot) above the threshold, then a
//   segmented sort of each buffer and cutKernel keep the best k and raise the threshold.
// The buffer holds <= k entries before a chunk and gains <= chunk during it: it never overflows
// (the kernel still checks). The last sort leaves each user's best k in order.
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <string>

#include "common/error.h"
#include "cuda/cuda_util.cuh"
#include "cuda/scorer_kernel.cuh"
#include "flat/panels.h"
#include "scorer/gpu_scorer.h"
#include "scorer/tile.h"

namespace cangen::gpu {

using scorer::kThreads;
using scorer::kTile;

namespace {

std::string unusableReason(int device) {
  int n = 0;  // not written when there is no driver
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA driver or device unavailable: ") + cudaGetErrorString(status);
  }
  if (n <= 0) return "no CUDA device found";
  if (device < 0 || device >= n) return "no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " found)";
  return "";
}

template <typename T>
void upload(DeviceBuffer<T>& buffer, const T* data, size_t n, cudaStream_t stream) {
  buffer.reserve(std::max<size_t>(n, 1));
  if (n > 0) CANGEN_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), data, n * sizeof(T), cudaMemcpyHostToDevice, stream));
}

}  // namespace

struct GpuScorer::State {
  explicit State(int d) : device(d) {}
  ~State() {
    cudaSetDevice(device);
    cudaStreamSynchronize(stream.get());
  }
  const int device;
  Stream stream;
  ScorerModel model;
  DeviceBuffer<float> plane[2];
  int rows[2] = {0, 0};
  size_t count = 0;
  bool synced = false;
  // Shared layers: every weight in one buffer, addressed by offsets.
  DeviceBuffer<float> weights;
  std::vector<size_t> offsets;
  // Per search.
  DeviceBuffer<float> first, firstBias, outWeights, outBias, query, headWeights, thresholds, candScores, altScores;
  DeviceBuffer<uint32_t> counts, candSlots, altSlots;
  DeviceBuffer<uint64_t> eligible;
  DeviceBuffer<int> segBegin, segEnd, overflow;
  DeviceBuffer<unsigned char> sortTemp;
};

GpuScorer::GpuScorer(int device, const ScorerModel& model) {
  const std::string reason = unusableReason(device);
  if (!reason.empty()) throw Error(ErrorCode::NoDevice, reason);
  if (model.kind == ScorerKind::Mlp && model.hidden.size() > static_cast<size_t>(scorer::kMaxLayers) + 1) {
    throw Error(ErrorCode::InvalidArgument, "The GPU scorer runs MLPs of up to " + std::to_string(scorer::kMaxLayers + 1) + " hidden layers");
  }
  CANGEN_CUDA_CHECK(cudaSetDevice(device));
  state_ = std::make_unique<State>(device);
  State& s = *state_;
  s.model = model;
  // Pack every shared weight (model order, row-major) into one device buffer.
  std::vector<float> host;
  auto add = [&](const std::vector<float>& v) {
    s.offsets.push_back(host.size());
    host.insert(host.end(), v.begin(), v.end());
  };
  for (const DenseWeights& d : model.hidden) {
    add(d.weight), add(d.bias), add(d.normGamma), add(d.normBeta);
  }
  add(model.gateLogits.weight), add(model.gateOut.weight), add(model.gateOut.bias);
  upload(s.weights, host.data(), host.size(), s.stream.get());
  s.overflow.reserve(1);
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(s.stream.get()));
}

GpuScorer::~GpuScorer() = default;

void GpuScorer::sync(const GpuPlaneView& view, size_t firstDirtyAd) {
  State& s = *state_;
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();
  const size_t panels = (view.count + kTile - 1) / kTile * 2;
  s.synced = false;
  for (size_t p = 0; p < view.planes.size() && p < 2; ++p) {
    const size_t floatsPerPanel = static_cast<size_t>(view.rows[p]) * kPanelWidth;
    bool full = s.rows[p] != view.rows[p];
    if (s.plane[p].reserve(std::max<size_t>(panels, 2) * floatsPerPanel, 1.5)) full = true;
    const size_t start = full ? 0 : std::min(firstDirtyAd / kTile * 2, panels);
    if (start < panels) {
      CANGEN_CUDA_CHECK(cudaMemcpyAsync(s.plane[p].data() + start * floatsPerPanel, view.planes[p] + start * floatsPerPanel,
                                        (panels - start) * floatsPerPanel * sizeof(float), cudaMemcpyHostToDevice, stream));
    }
    s.rows[p] = view.rows[p];
  }
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
  s.count = view.count;
  s.synced = true;
}

void GpuScorer::search(const std::vector<GpuUserInputs>& users, const uint64_t* eligible, int k, int64_t* outSlots,
                       float* outScores) {
  State& s = *state_;
  const ScorerModel& m = s.model;
  const int nu = static_cast<int>(users.size());
  if (!s.synced) throw Error(ErrorCode::Internal, "GpuScorer::search before a successful sync");
  if (k < 1 || k > kMaxScorerGpuK) throw Error(ErrorCode::InvalidArgument, "GpuScorer::search: k out of range");
  std::fill(outSlots, outSlots + static_cast<size_t>(nu) * k, int64_t{-1});
  std::fill(outScores, outScores + static_cast<size_t>(nu) * k, -std::numeric_limits<float>::infinity());
  if (s.count == 0) return;
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();

  // Per-user inputs, concatenated.
  auto concat = [&](auto field) {
    std::vector<float> all;
    for (const GpuUserInputs& u : users) {
      const std::vector<float>& v = u.*field;
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  std::vector<float> first = concat(&GpuUserInputs::first), firstBias = concat(&GpuUserInputs::firstBias),
                     outWeights = concat(&GpuUserInputs::outWeights), query = concat(&GpuUserInputs::query),
                     gateBias = concat(&GpuUserInputs::gateBias), headWeights = concat(&GpuUserInputs::headWeights);
  std::vector<float> outBias;
  for (const GpuUserInputs& u : users) outBias.push_back(u.outBias);
  if (m.kind == ScorerKind::Mol) firstBias = gateBias;
  upload(s.first, first.data(), first.size(), stream);
  upload(s.firstBias, firstBias.data(), firstBias.size(), stream);
  upload(s.outWeights, outWeights.data(), outWeights.size(), stream);
  upload(s.outBias, outBias.data(), outBias.size(), stream);
  upload(s.query, query.data(), query.size(), stream);
  upload(s.headWeights, headWeights.data(), headWeights.size(), stream);
  const uint64_t* eligibleDevice = nullptr;
  if (eligible != nullptr) {
    upload(s.eligible, eligible, (s.count + 63) / 64, stream);
    eligibleDevice = s.eligible.data();
  }

  // Chunks: nu * (k + chunk) entries must stay addressable by int (cub's segment offsets).
  const size_t limit = (size_t{1} << 30) / nu;
  size_t chunk = std::min<size_t>((s.count + kTile - 1) / kTile * kTile, size_t{1} << 20);
  if (limit > static_cast<size_t>(k) + kTile) chunk = std::min(chunk, (limit - k) / kTile * kTile);
  else throw Error(ErrorCode::InvalidArgument, "GpuScorer::search: users x k too large for one search");
  chunk = std::max<size_t>(chunk, kTile);
  const size_t capacity = k + chunk;
  const size_t entries = static_cast<size_t>(nu) * capacity;
  s.thresholds.reserve(nu), s.counts.reserve(nu), s.segBegin.reserve(nu), s.segEnd.reserve(nu);
  s.candScores.reserve(entries), s.candSlots.reserve(entries), s.altScores.reserve(entries), s.altSlots.reserve(entries);
  CANGEN_CUDA_CHECK(cudaMemsetAsync(s.overflow.data(), 0, sizeof(int), stream));
  scorer::resetKernel<<<(nu + 255) / 256, 256, 0, stream>>>(s.counts.data(), s.thresholds.data(), nu);
  CANGEN_CUDA_CHECK_LAUNCH("resetKernel");

  scorer::ScanArgs a{};
  a.kind = m.kind == ScorerKind::Dot ? scorer::kDot : m.kind == ScorerKind::Mlp ? scorer::kMlp : scorer::kMol;
  a.act = m.activation == Activation::Relu ? scorer::kRelu : scorer::kSilu;
  a.eps = m.normEps;
  a.plane0 = s.plane[0].data();
  a.plane1 = s.plane[1].data();
  a.rows0 = s.rows[0];
  a.rows1 = s.rows[1];
  a.eligible = eligibleDevice;
  a.itemDim = m.itemDim;
  a.query = s.query.data();
  a.queryStride = nu > 0 ? query.size() / nu : 0;
  a.firstBias = s.firstBias.data();
  a.firstBiasStride = firstBias.size() / nu;
  size_t shared = 0;
  const float* w = s.weights.data();
  auto at = [&](size_t i, bool present) { return present ? w + s.offsets[i] : nullptr; };
  if (m.kind == ScorerKind::Mlp) {
    a.first = first.empty() ? nullptr : s.first.data();
    a.firstStride = first.size() / nu;
    a.outWeights = s.outWeights.data();
    a.outStride = outWeights.size() / nu;
    a.outBias = s.outBias.data();
    a.h1 = m.hidden[0].out;
    a.firstGamma = at(2, !m.hidden[0].normGamma.empty());
    a.firstBeta = at(3, !m.hidden[0].normBeta.empty());
    a.layers = static_cast<int>(m.hidden.size()) - 1;
    int maxRows = std::max(m.itemDim, a.h1);
    for (int l = 0; l < a.layers; ++l) {
      const DenseWeights& d = m.hidden[l + 1];
      const size_t base = 4 * (l + 1);
      a.layer[l] = scorer::DeviceLayer{at(base, true), at(base + 1, !d.bias.empty()), at(base + 2, !d.normGamma.empty()),
                                       at(base + 3, !d.normBeta.empty()), d.in, d.out};
      maxRows = std::max(maxRows, d.out);
    }
    a.maxRows = maxRows;
    shared = 2 * static_cast<size_t>(maxRows) * kTile * sizeof(float);
  } else if (m.kind == ScorerKind::Mol) {
    const size_t base = 4 * m.hidden.size();
    a.pq = m.queryComponents, a.px = m.itemComponents, a.dc = m.componentDim, a.g = m.gatingWidth, a.heads = m.heads;
    a.gateLogits = at(base, true);
    a.gateOut = at(base + 1, true);
    a.gateOutBias = at(base + 2, !m.gateOut.bias.empty());
    a.headWeights = s.headWeights.data();
    const size_t p = m.logits();
    shared = (static_cast<size_t>(a.rows0) + p + a.g + m.heads * p) * kTile * sizeof(float);
  }
  if (shared > 48 * 1024) {
    CANGEN_CUDA_CHECK(cudaFuncSetAttribute(scorer::scorerScanKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(shared)));
  }
  a.thresholds = s.thresholds.data();
  a.counts = s.counts.data();
  a.capacity = capacity;
  a.overflow = s.overflow.data();

  // Sorts each user's buffer (descending) in place, swapping the ping-pong buffers as cub asks.
  float* scores = s.candScores.data();
  uint32_t* slots = s.candSlots.data();
  float* altScores = s.altScores.data();
  uint32_t* altSlots = s.altSlots.data();
  auto sortAndCut = [&]() {
    scorer::segmentsKernel<<<(nu + 255) / 256, 256, 0, stream>>>(s.counts.data(), capacity, nu, s.segBegin.data(), s.segEnd.data());
    CANGEN_CUDA_CHECK_LAUNCH("segmentsKernel");
    cub::DoubleBuffer<float> keys(scores, altScores);
    cub::DoubleBuffer<uint32_t> values(slots, altSlots);
    size_t bytes = 0;
    CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortPairsDescending(nullptr, bytes, keys, values, static_cast<int>(entries), nu,
                                                                   s.segBegin.data(), s.segEnd.data(), stream));
    s.sortTemp.reserve(std::max<size_t>(bytes, 1), 1.5);
    bytes = s.sortTemp.capacity();
    CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortPairsDescending(s.sortTemp.data(), bytes, keys, values, static_cast<int>(entries),
                                                                   nu, s.segBegin.data(), s.segEnd.data(), stream));
    if (keys.Current() != scores) std::swap(scores, altScores);
    if (values.Current() != slots) std::swap(slots, altSlots);
    scorer::cutKernel<<<(nu + 255) / 256, 256, 0, stream>>>(s.counts.data(), s.thresholds.data(), scores, capacity, nu, k);
    CANGEN_CUDA_CHECK_LAUNCH("cutKernel");
  };

  for (size_t begin = 0; begin < s.count; begin += chunk) {
    a.chunkBegin = begin;
    a.chunkEnd = std::min(begin + chunk, s.count);
    a.candScores = scores;
    a.candSlots = slots;
    const dim3 grid(static_cast<unsigned>((a.chunkEnd - begin + kTile - 1) / kTile), static_cast<unsigned>(nu));
    scorer::scorerScanKernel<<<grid, kThreads, shared, stream>>>(a);
    CANGEN_CUDA_CHECK_LAUNCH("scorerScanKernel");
    sortAndCut();
  }

  std::vector<uint32_t> counts(nu);
  int overflow = 0;
  CANGEN_CUDA_CHECK(cudaMemcpyAsync(counts.data(), s.counts.data(), nu * sizeof(uint32_t), cudaMemcpyDeviceToHost, stream));
  CANGEN_CUDA_CHECK(cudaMemcpyAsync(&overflow, s.overflow.data(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (overflow) throw Error(ErrorCode::Internal, "GpuScorer::search: candidate buffer overflow (a bug in cangen: please report it)");
  std::vector<float> bestScores(k);
  std::vector<uint32_t> bestSlots(k);
  for (int u = 0; u < nu; ++u) {
    const size_t n = std::min<size_t>(counts[u], k);
    if (n == 0) continue;
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(bestScores.data(), scores + u * capacity, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(bestSlots.data(), slots + u * capacity, n * sizeof(uint32_t), cudaMemcpyDeviceToHost, stream));
    CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (size_t i = 0; i < n; ++i) {
      outSlots[static_cast<size_t>(u) * k + i] = bestSlots[i];
      outScores[static_cast<size_t>(u) * k + i] = bestScores[i];
    }
  }
}

}  // namespace cangen::gpu
