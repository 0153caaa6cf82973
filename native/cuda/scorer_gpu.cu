// Host side of the scorer's GPU scan: device copies of the ad planes and the model's shared
// layers, and the chunked score -> append -> cut loop (device code in scorer_kernel.cuh):
//   each user owns a candidate buffer of capacity k + chunk, a count and a threshold (-inf);
//   per chunk of ads, scorerScanKernel appends every (score, slot) above the threshold, then a
//   segmented sort of each buffer and cutKernel keep the best k and raise the threshold.
// The buffer holds <= k entries before a chunk and gains <= chunk during it: it never overflows
// (the kernel still checks). The last sort leaves each user's best k in order.
// Users go in batches of at most 65,535 (grid.y) and chunks are sized so that a batch's buffers
// fit in half the free device memory (scorer/gpu_scan_plan.h); a model too wide for the device's
// shared memory is reported back and scored on the CPU.
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <string>

#include "common/error.h"
#include "cuda/cuda_util.cuh"
#include "cuda/scorer_kernel.cuh"
#include "flat/panels.h"
#include "scorer/gpu_scan_plan.h"
#include "scorer/gpu_scorer.h"
#include "scorer/tile.h"

namespace cangen::gpu {

using scorer::kThreads;
using scorer::kTile;
static_assert(kTile == kScanTile, "the host plan and the kernel agree on the tile");

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
  // Device limits, read once.
  size_t sharedPerBlock = kDefaultSharedPerBlock, sharedPerBlockOptin = 0, sharedOptedIn = 0;

  // Device bytes of the per-search buffers, which a new search may reuse.
  size_t searchBytes() const {
    return (first.capacity() + firstBias.capacity() + outWeights.capacity() + outBias.capacity() + query.capacity() +
            headWeights.capacity() + thresholds.capacity() + candScores.capacity() + altScores.capacity()) * sizeof(float) +
           (counts.capacity() + candSlots.capacity() + altSlots.capacity()) * sizeof(uint32_t) + eligible.capacity() * 8 +
           (segBegin.capacity() + segEnd.capacity()) * sizeof(int) + sortTemp.capacity();
  }
};

GpuScorer::GpuScorer(int device, const ScorerModel& model) {
  const std::string reason = unusableDeviceReason(device);
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
  int perBlock = 0, optin = 0;
  CANGEN_CUDA_CHECK(cudaDeviceGetAttribute(&perBlock, cudaDevAttrMaxSharedMemoryPerBlock, device));
  CANGEN_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  s.sharedPerBlock = static_cast<size_t>(perBlock);
  s.sharedPerBlockOptin = static_cast<size_t>(optin);
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

namespace {

// Users [begin, end) of `users`, one field concatenated (row-major, a stride per user).
std::vector<float> concatUsers(const std::vector<GpuUserInputs>& users, size_t begin, size_t end,
                               std::vector<float> GpuUserInputs::*field) {
  std::vector<float> all;
  for (size_t u = begin; u < end; ++u) all.insert(all.end(), (users[u].*field).begin(), (users[u].*field).end());
  return all;
}

size_t inputBytes(const GpuUserInputs& u) {
  return sizeof(float) * (u.first.size() + u.firstBias.size() + u.gateBias.size() + u.outWeights.size() + u.query.size() +
                          u.headWeights.size() + 1);
}

}  // namespace

bool GpuScorer::search(const std::vector<GpuUserInputs>& users, const uint64_t* eligible, int k, int64_t* outSlots,
                       float* outScores, std::string* fallbackReason) {
  State& s = *state_;
  const ScorerModel& m = s.model;
  const size_t nu = users.size();
  if (!s.synced) throw Error(ErrorCode::Internal, "GpuScorer::search before a successful sync");
  if (k < 1 || k > kMaxScorerGpuK) throw Error(ErrorCode::InvalidArgument, "GpuScorer::search: k out of range");
  std::fill(outSlots, outSlots + nu * k, int64_t{-1});
  std::fill(outScores, outScores + nu * k, -std::numeric_limits<float>::infinity());
  if (s.count == 0 || nu == 0) return true;
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();

  // The launch shape: within the device's shared memory, grid and free memory, or the CPU.
  GpuLimits limits;
  limits.sharedPerBlock = s.sharedPerBlock;
  limits.sharedPerBlockOptin = s.sharedPerBlockOptin;
  size_t totalBytes = 0;
  CANGEN_CUDA_CHECK(cudaMemGetInfo(&limits.freeBytes, &totalBytes));
  limits.reservedBytes = s.searchBytes();
  GpuScanNeeds needs;
  needs.sharedBytes = scanSharedBytes(m, s.rows[0]);
  needs.ads = s.count;
  needs.users = nu;
  needs.k = k;
  needs.inputBytesPerUser = inputBytes(users[0]);
  const GpuScanPlan plan = planGpuScan(needs, limits);
  if (!plan.onGpu) {
    if (fallbackReason) *fallbackReason = plan.fallbackReason;
    return false;
  }
  const size_t shared = needs.sharedBytes;
  if (plan.sharedOptIn && shared > s.sharedOptedIn) {
    CANGEN_CUDA_CHECK(cudaFuncSetAttribute(scorer::scorerScanKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(shared)));
    s.sharedOptedIn = shared;
  }

  const uint64_t* eligibleDevice = nullptr;
  if (eligible != nullptr) {
    upload(s.eligible, eligible, (s.count + 63) / 64, stream);
    eligibleDevice = s.eligible.data();
  }
  const size_t batch = plan.usersPerBatch;
  const size_t capacity = plan.capacity;
  const size_t chunk = plan.chunk;
  s.thresholds.reserve(batch), s.counts.reserve(batch), s.segBegin.reserve(batch), s.segEnd.reserve(batch);
  s.candScores.reserve(batch * capacity), s.candSlots.reserve(batch * capacity);
  s.altScores.reserve(batch * capacity), s.altSlots.reserve(batch * capacity);
  CANGEN_CUDA_CHECK(cudaMemsetAsync(s.overflow.data(), 0, sizeof(int), stream));

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
  const float* w = s.weights.data();
  auto at = [&](size_t i, bool present) { return present ? w + s.offsets[i] : nullptr; };
  if (m.kind == ScorerKind::Mlp) {
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
  } else if (m.kind == ScorerKind::Mol) {
    const size_t base = 4 * m.hidden.size();
    a.pq = m.queryComponents, a.px = m.itemComponents, a.dc = m.componentDim, a.g = m.gatingWidth, a.heads = m.heads;
    a.gateLogits = at(base, true);
    a.gateOut = at(base + 1, true);
    a.gateOutBias = at(base + 2, !m.gateOut.bias.empty());
  }
  a.thresholds = s.thresholds.data();
  a.counts = s.counts.data();
  a.capacity = capacity;
  a.overflow = s.overflow.data();

  // Each batch's best k per user come back in one strided copy; one synchronisation at the end.
  std::vector<float> bestScores(nu * k);
  std::vector<uint32_t> bestSlots(nu * k), counts(nu);
  float* scores = s.candScores.data();
  uint32_t* slots = s.candSlots.data();
  float* altScores = s.altScores.data();
  uint32_t* altSlots = s.altSlots.data();
  for (size_t b0 = 0; b0 < nu; b0 += batch) {
    const size_t b1 = std::min(nu, b0 + batch);
    const int bn = static_cast<int>(b1 - b0);
    const int entries = static_cast<int>(static_cast<size_t>(bn) * capacity);  // < INT_MAX by the plan
    // Inputs of this batch (pageable: each copy has left the host buffer when the call returns).
    std::vector<float> first = concatUsers(users, b0, b1, &GpuUserInputs::first);
    std::vector<float> firstBias = concatUsers(users, b0, b1, m.kind == ScorerKind::Mol ? &GpuUserInputs::gateBias : &GpuUserInputs::firstBias);
    std::vector<float> outWeights = concatUsers(users, b0, b1, &GpuUserInputs::outWeights);
    std::vector<float> query = concatUsers(users, b0, b1, &GpuUserInputs::query);
    std::vector<float> headWeights = concatUsers(users, b0, b1, &GpuUserInputs::headWeights);
    std::vector<float> outBias;
    for (size_t u = b0; u < b1; ++u) outBias.push_back(users[u].outBias);
    upload(s.first, first.data(), first.size(), stream);
    upload(s.firstBias, firstBias.data(), firstBias.size(), stream);
    upload(s.outWeights, outWeights.data(), outWeights.size(), stream);
    upload(s.outBias, outBias.data(), outBias.size(), stream);
    upload(s.query, query.data(), query.size(), stream);
    upload(s.headWeights, headWeights.data(), headWeights.size(), stream);
    a.query = s.query.data();
    a.queryStride = query.size() / bn;
    a.firstBias = s.firstBias.data();
    a.firstBiasStride = firstBias.size() / bn;
    a.first = first.empty() ? nullptr : s.first.data();
    a.firstStride = first.size() / bn;
    a.outWeights = s.outWeights.data();
    a.outStride = outWeights.size() / bn;
    a.outBias = s.outBias.data();
    a.headWeights = s.headWeights.data();

    scorer::resetKernel<<<(bn + 255) / 256, 256, 0, stream>>>(s.counts.data(), s.thresholds.data(), bn);
    CANGEN_CUDA_CHECK_LAUNCH("resetKernel");
    for (size_t begin = 0; begin < s.count; begin += chunk) {
      a.chunkBegin = begin;
      a.chunkEnd = std::min(begin + chunk, s.count);
      a.candScores = scores;
      a.candSlots = slots;
      const dim3 grid(static_cast<unsigned>((a.chunkEnd - begin + kTile - 1) / kTile), static_cast<unsigned>(bn));
      scorer::scorerScanKernel<<<grid, kThreads, shared, stream>>>(a);
      CANGEN_CUDA_CHECK_LAUNCH("scorerScanKernel");
      // Sorts each user's buffer (descending), swapping the ping-pong buffers as cub asks, and cuts to k.
      scorer::segmentsKernel<<<(bn + 255) / 256, 256, 0, stream>>>(s.counts.data(), capacity, bn, s.segBegin.data(), s.segEnd.data());
      CANGEN_CUDA_CHECK_LAUNCH("segmentsKernel");
      cub::DoubleBuffer<float> keys(scores, altScores);
      cub::DoubleBuffer<uint32_t> values(slots, altSlots);
      size_t bytes = 0;
      CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortPairsDescending(nullptr, bytes, keys, values, entries, bn,
                                                                     s.segBegin.data(), s.segEnd.data(), stream));
      s.sortTemp.reserve(std::max<size_t>(bytes, 1), 1.5);
      bytes = s.sortTemp.capacity();
      CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortPairsDescending(s.sortTemp.data(), bytes, keys, values, entries, bn,
                                                                     s.segBegin.data(), s.segEnd.data(), stream));
      if (keys.Current() != scores) std::swap(scores, altScores);
      if (values.Current() != slots) std::swap(slots, altSlots);
      scorer::cutKernel<<<(bn + 255) / 256, 256, 0, stream>>>(s.counts.data(), s.thresholds.data(), scores, capacity, bn, k);
      CANGEN_CUDA_CHECK_LAUNCH("cutKernel");
    }
    CANGEN_CUDA_CHECK(cudaMemcpy2DAsync(bestScores.data() + b0 * k, k * sizeof(float), scores, capacity * sizeof(float),
                                        k * sizeof(float), bn, cudaMemcpyDeviceToHost, stream));
    CANGEN_CUDA_CHECK(cudaMemcpy2DAsync(bestSlots.data() + b0 * k, k * sizeof(uint32_t), slots, capacity * sizeof(uint32_t),
                                        k * sizeof(uint32_t), bn, cudaMemcpyDeviceToHost, stream));
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(counts.data() + b0, s.counts.data(), bn * sizeof(uint32_t), cudaMemcpyDeviceToHost, stream));
  }
  int overflow = 0;
  CANGEN_CUDA_CHECK(cudaMemcpyAsync(&overflow, s.overflow.data(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (overflow) throw Error(ErrorCode::Internal, "GpuScorer::search: candidate buffer overflow (a bug in cangen: please report it)");
  for (size_t u = 0; u < nu; ++u) {
    const size_t n = std::min<size_t>(counts[u], k);
    for (size_t i = 0; i < n; ++i) {
      outSlots[u * k + i] = bestSlots[u * k + i];
      outScores[u * k + i] = bestScores[u * k + i];
    }
  }
  return true;
}

}  // namespace cangen::gpu
