// Host side of the exact GPU search: device copies of the packed corpus, the chunked
// score -> append -> select loop, and the final per-query sort. Device code lives in
// score_kernel.cuh and select_kernel.cuh; this file only plans, allocates and launches.
//
// Algorithm (per batch of queries):
//   every query owns a candidate buffer of capacity k + maxChunk, a count and a threshold (-inf);
//   for each chunk of the corpus (sizes 16384, 32768, ... doubling up to maxChunk):
//     scoreChunkKernel appends every (score, slot) with score > threshold (never a score matrix);
//     selectTopKKernel cuts each buffer holding more than k back to exactly k and sets the
//     threshold to the k-th score.
//   A buffer holds <= k entries before a chunk and gains <= chunk entries during it, so the
//   capacity can never be exceeded, whatever the data order; the kernels still check it.
//   Finally the <= k survivors are sorted (score descending, slot ascending) and padded.
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.h"
#include "cuda/cuda_util.cuh"
#include "cuda/gpu_flat_search.h"
#include "cuda/score_kernel.cuh"
#include "cuda/select_kernel.cuh"

namespace cangen::gpu {

static_assert(kPanelLanes == kPanelWidth, "score kernel assumes 16-ad panels");
static_assert(kTileAds % kPanelWidth == 0, "a score tile covers whole panels");

namespace {

constexpr size_t kFirstChunk = 16384;             // ads; a multiple of kTileAds
constexpr size_t kMaxChunk = size_t{1} << 22;     // ads; grid.y = kMaxChunk / 128 = 32768
constexpr int kMaxBatch = 4096;                   // queries per pass over the corpus
constexpr size_t kWorkspaceCap = size_t{2} << 30; // bytes of search workspace we aim to stay under
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

static_assert(kFirstChunk % kTileAds == 0 && kMaxChunk % kTileAds == 0, "chunks are whole tiles");
static_assert(kMaxChunk / kTileAds <= 65535, "grid.y limit");
static_assert(kMaxBatch <= 65535, "grid.y limit of the finishing kernels (one row of blocks per query)");

size_t roundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }
size_t roundDown(size_t x, size_t m) { return x / m * m; }

// Why device `device` cannot be used, or "" when it can.
std::string noDeviceReason(int device) {
  int n = 0;  // not written when there is no driver (error 35)
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA driver or device unavailable: cudaGetDeviceCount failed with error ") +
           std::to_string(static_cast<int>(status)) + ", " + cudaGetErrorString(status);
  }
  if (n <= 0) return "no CUDA device found";
  if (device < 0 || device >= n) {
    return "no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " found)";
  }
  return "";
}

// How a search is cut into query batches and corpus chunks.
struct SearchPlan {
  int batch = 1;          // queries per pass
  size_t firstChunk = 0;  // ads in the first chunk
  size_t maxChunk = 0;    // ads in the largest chunk
  size_t capacity = 0;    // candidate entries per query: k + maxChunk
};

// Bytes per query that do not depend on the chunk size: select scratch (8k), sort keys in and
// out (16k), results (12k), plus count and threshold.
size_t fixedBytesPerQuery(int k) { return 36 * static_cast<size_t>(k) + 8; }

SearchPlan makePlan(size_t count, int nq, int k, size_t budget) {
  SearchPlan plan;
  const size_t corpusTiles = roundUp(count, kTileAds);
  plan.firstChunk = std::min(kFirstChunk, corpusTiles);
  const size_t perQueryMin = fixedBytesPerQuery(k) + 8 * (static_cast<size_t>(k) + plan.firstChunk);
  size_t batch = std::min<size_t>(static_cast<size_t>(nq), kMaxBatch);
  if (batch * perQueryMin > budget) batch = std::max<size_t>(1, budget / perQueryMin);
  plan.batch = static_cast<int>(batch);
  size_t maxChunk = plan.firstChunk;
  const size_t perQueryBudget = budget / batch;
  if (perQueryBudget > fixedBytesPerQuery(k)) {
    const size_t entries = (perQueryBudget - fixedBytesPerQuery(k)) / 8;
    if (entries > static_cast<size_t>(k)) maxChunk = std::max(maxChunk, roundDown(entries - k, kTileAds));
  }
  plan.maxChunk = std::min({maxChunk, kMaxChunk, corpusTiles});
  plan.maxChunk = std::max(plan.maxChunk, plan.firstChunk);
  plan.capacity = static_cast<size_t>(k) + plan.maxChunk;
  return plan;
}

}  // namespace

bool compiledWithCuda() { return true; }

int deviceCount() {
  int n = 0;  // not written when there is no driver
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string describeDevice(int device) {
  const std::string reason = noDeviceReason(device);
  if (!reason.empty()) return reason;
  cudaDeviceProp prop;
  const cudaError_t status = cudaGetDeviceProperties(&prop, device);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA device ") + std::to_string(device) + " unreadable (" + cudaGetErrorString(status) + ")";
  }
  return std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.totalGlobalMem >> 30) + " GiB";
}

struct GpuFlatSearcher::State {
  explicit State(int deviceIndex) : device(deviceIndex) {}
  ~State() {
    // Queued work may still use the buffers below; they are freed after this body.
    cudaSetDevice(device);
    cudaStreamSynchronize(stream.get());
  }

  size_t workspaceBytes() const {
    return queries.capacity() * 4 + eligible.capacity() * 8 + thresholds.capacity() * 4 +
           counts.capacity() * 4 + candScores.capacity() * 4 + candSlots.capacity() * 4 +
           scratchScores.capacity() * 4 + scratchSlots.capacity() * 4 + keys.capacity() * 8 +
           sortedKeys.capacity() * 8 + segmentBegin.capacity() * 8 + segmentEnd.capacity() * 8 +
           sortTemp.capacity() + resultSlots.capacity() * 8 + resultScores.capacity() * 4;
  }

  const int device;
  Stream stream;  // created on `device` (the constructor selects it first)

  // The synced corpus.
  DeviceBuffer<float> panels;
  DeviceBuffer<float> bias;
  size_t count = 0;
  int dim = 0;
  bool hasBias = false;
  bool synced = false;

  // Search workspace, grown on demand and kept between searches.
  DeviceBuffer<float> queries;
  DeviceBuffer<uint64_t> eligible;
  DeviceBuffer<float> thresholds;
  DeviceBuffer<uint32_t> counts;
  DeviceBuffer<float> candScores;
  DeviceBuffer<uint32_t> candSlots;
  DeviceBuffer<float> scratchScores;
  DeviceBuffer<uint32_t> scratchSlots;
  DeviceBuffer<uint64_t> keys;
  DeviceBuffer<uint64_t> sortedKeys;
  DeviceBuffer<int64_t> segmentBegin;
  DeviceBuffer<int64_t> segmentEnd;
  DeviceBuffer<unsigned char> sortTemp;
  DeviceBuffer<int64_t> resultSlots;
  DeviceBuffer<float> resultScores;
  DeviceBuffer<int> errorFlag;
};

GpuFlatSearcher::GpuFlatSearcher(int device) {
  const std::string reason = noDeviceReason(device);
  if (!reason.empty()) throw Error(ErrorCode::NoDevice, reason);
  CANGEN_CUDA_CHECK(cudaSetDevice(device));
  state_ = std::make_unique<State>(device);
  state_->errorFlag.reserve(1);
}

GpuFlatSearcher::~GpuFlatSearcher() = default;

void GpuFlatSearcher::sync(const PanelView& view, size_t firstDirtyAd) {
  State& s = *state_;
  if (view.dim < 1) throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::sync: dim must be >= 1");
  if (view.count > 0 && view.panels == nullptr) {
    throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::sync: panels is null");
  }
  if (view.count > static_cast<size_t>(UINT32_MAX)) {
    throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::sync: more than 2^32 - 1 ads on one device");
  }
  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();

  // Anything that invalidates the device copy forces a full upload.
  bool full = !s.synced || s.dim != view.dim || s.hasBias != (view.bias != nullptr);
  s.synced = false;  // until the upload below completes
  const size_t panels = panelCount(view.count);
  const size_t floatsPerPanel = panelFloats(view.dim);
  if (s.panels.reserve(std::max<size_t>(panels, 1) * floatsPerPanel, 1.5)) full = true;
  if (view.bias != nullptr && s.bias.reserve(std::max<size_t>(panels, 1) * kPanelWidth, 1.5)) full = true;

  const size_t startPanel = full ? 0 : std::min(firstDirtyAd / kPanelWidth, panels);
  if (startPanel < panels) {
    const size_t offset = startPanel * floatsPerPanel;
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(s.panels.data() + offset, view.panels + offset,
                                      (panels - startPanel) * floatsPerPanel * sizeof(float),
                                      cudaMemcpyHostToDevice, stream));
  }
  const size_t startAd = startPanel * kPanelWidth;
  if (view.bias != nullptr && startAd < view.count) {
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(s.bias.data() + startAd, view.bias + startAd,
                                      (view.count - startAd) * sizeof(float), cudaMemcpyHostToDevice,
                                      stream));
  }
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
  s.count = view.count;
  s.dim = view.dim;
  s.hasBias = view.bias != nullptr;
  s.synced = true;
}

void GpuFlatSearcher::search(const float* queries, int nq, int k, const uint64_t* eligible,
                             int64_t* outSlots, float* outScores) {
  State& s = *state_;
  if (nq < 1) throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::search: nq must be >= 1, got " + std::to_string(nq));
  if (k < 1 || k > kMaxGpuK) {
    throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::search: k must be in [1, " +
                                                std::to_string(kMaxGpuK) + "], got " + std::to_string(k));
  }
  if (queries == nullptr || outSlots == nullptr || outScores == nullptr) {
    throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::search: null queries or output pointer");
  }
  if (!s.synced) throw Error(ErrorCode::InvalidArgument, "GpuFlatSearcher::search: called before a successful sync");

  const size_t total = static_cast<size_t>(nq) * static_cast<size_t>(k);
  if (s.count == 0) {
    std::fill(outSlots, outSlots + total, int64_t{-1});
    std::fill(outScores, outScores + total, kNegInf);
    return;
  }

  CANGEN_CUDA_CHECK(cudaSetDevice(s.device));
  const cudaStream_t stream = s.stream.get();

  // Inputs.
  const size_t queryFloats = static_cast<size_t>(nq) * static_cast<size_t>(s.dim);
  s.queries.reserve(queryFloats, 1.5);
  CANGEN_CUDA_CHECK(cudaMemcpyAsync(s.queries.data(), queries, queryFloats * sizeof(float),
                                    cudaMemcpyHostToDevice, stream));
  const uint64_t* eligibleDevice = nullptr;
  if (eligible != nullptr) {
    const size_t words = (s.count + 63) / 64;
    s.eligible.reserve(words, 1.5);
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(s.eligible.data(), eligible, words * sizeof(uint64_t),
                                      cudaMemcpyHostToDevice, stream));
    eligibleDevice = s.eligible.data();
  }
  CANGEN_CUDA_CHECK(cudaMemsetAsync(s.errorFlag.data(), 0, sizeof(int), stream));

  // Plan within the memory we can use: what is free plus what the workspace already holds.
  size_t freeBytes = 0;
  size_t totalBytes = 0;
  CANGEN_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
  const size_t budget = std::min(kWorkspaceCap, (freeBytes + s.workspaceBytes()) / 2);
  const SearchPlan plan = makePlan(s.count, nq, k, budget);
  const size_t batchEntries = static_cast<size_t>(plan.batch) * static_cast<size_t>(k);

  s.thresholds.reserve(plan.batch);
  s.counts.reserve(plan.batch);
  s.candScores.reserve(static_cast<size_t>(plan.batch) * plan.capacity);
  s.candSlots.reserve(static_cast<size_t>(plan.batch) * plan.capacity);
  s.scratchScores.reserve(batchEntries);
  s.scratchSlots.reserve(batchEntries);
  s.keys.reserve(batchEntries);
  s.sortedKeys.reserve(batchEntries);
  s.segmentBegin.reserve(plan.batch);
  s.segmentEnd.reserve(plan.batch);
  s.resultSlots.reserve(batchEntries);
  s.resultScores.reserve(batchEntries);

  for (int b0 = 0; b0 < nq; b0 += plan.batch) {
    const int bn = std::min(plan.batch, nq - b0);
    resetQueriesKernel<<<(bn + 255) / 256, 256, 0, stream>>>(s.thresholds.data(), s.counts.data(), bn);
    CANGEN_CUDA_CHECK_LAUNCH("resetQueriesKernel");

    ScoreArgs score{};
    score.panels = s.panels.data();
    score.bias = s.hasBias ? s.bias.data() : nullptr;
    score.eligible = eligibleDevice;
    score.queries = s.queries.data() + static_cast<size_t>(b0) * s.dim;
    score.nq = bn;
    score.dim = s.dim;
    score.thresholds = s.thresholds.data();
    score.counts = s.counts.data();
    score.candScores = s.candScores.data();
    score.candSlots = s.candSlots.data();
    score.capacity = plan.capacity;
    score.errorFlag = s.errorFlag.data();

    SelectArgs select{};
    select.candScores = s.candScores.data();
    select.candSlots = s.candSlots.data();
    select.counts = s.counts.data();
    select.thresholds = s.thresholds.data();
    select.capacity = plan.capacity;
    select.k = k;
    select.scratchScores = s.scratchScores.data();
    select.scratchSlots = s.scratchSlots.data();
    select.errorFlag = s.errorFlag.data();

    // Few queries: an 8-query tile wastes less work than a 32-query one.
    const bool wide = bn >= 32;
    const int tileQueries = wide ? kScoreThreadsY * 4 : kScoreThreadsY * 1;
    const dim3 block(kScoreThreadsX, kScoreThreadsY);
    size_t chunk = plan.firstChunk;
    for (size_t begin = 0; begin < s.count; begin += chunk, chunk = std::min(chunk * 2, plan.maxChunk)) {
      score.chunkBegin = begin;
      score.chunkEnd = std::min(begin + chunk, s.count);
      const dim3 grid(static_cast<unsigned>((bn + tileQueries - 1) / tileQueries),
                      static_cast<unsigned>((score.chunkEnd - begin + kTileAds - 1) / kTileAds));
      if (wide) {
        scoreChunkKernel<4><<<grid, block, 0, stream>>>(score);
      } else {
        scoreChunkKernel<1><<<grid, block, 0, stream>>>(score);
      }
      CANGEN_CUDA_CHECK_LAUNCH("scoreChunkKernel");
      selectTopKKernel<<<bn, kSelectThreads, 0, stream>>>(select);
      CANGEN_CUDA_CHECK_LAUNCH("selectTopKKernel");
    }

    // Sort the <= k survivors of each query: score descending, then slot ascending.
    const dim3 finishGrid(static_cast<unsigned>((k + kFinishThreads - 1) / kFinishThreads), static_cast<unsigned>(bn));
    buildSortKeysKernel<<<finishGrid, kFinishThreads, 0, stream>>>(
        s.candScores.data(), s.candSlots.data(), s.counts.data(), plan.capacity, k, s.keys.data(),
        s.segmentBegin.data(), s.segmentEnd.data(), s.errorFlag.data());
    CANGEN_CUDA_CHECK_LAUNCH("buildSortKeysKernel");
    const int64_t items = static_cast<int64_t>(bn) * k;
    size_t tempBytes = 0;
    CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeysDescending(
        nullptr, tempBytes, s.keys.data(), s.sortedKeys.data(), items, bn, s.segmentBegin.data(),
        s.segmentEnd.data(), stream));
    s.sortTemp.reserve(std::max<size_t>(tempBytes, 1), 1.5);
    tempBytes = s.sortTemp.capacity();
    CANGEN_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeysDescending(
        s.sortTemp.data(), tempBytes, s.keys.data(), s.sortedKeys.data(), items, bn,
        s.segmentBegin.data(), s.segmentEnd.data(), stream));
    writeResultsKernel<<<finishGrid, kFinishThreads, 0, stream>>>(s.sortedKeys.data(), s.counts.data(), k,
                                                                  s.resultSlots.data(), s.resultScores.data());
    CANGEN_CUDA_CHECK_LAUNCH("writeResultsKernel");
    const size_t outOffset = static_cast<size_t>(b0) * static_cast<size_t>(k);
    const size_t outCount = static_cast<size_t>(bn) * static_cast<size_t>(k);
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(outSlots + outOffset, s.resultSlots.data(), outCount * sizeof(int64_t),
                                      cudaMemcpyDeviceToHost, stream));
    CANGEN_CUDA_CHECK(cudaMemcpyAsync(outScores + outOffset, s.resultScores.data(), outCount * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream));
  }

  int errorBits = 0;
  CANGEN_CUDA_CHECK(cudaMemcpyAsync(&errorBits, s.errorFlag.data(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  CANGEN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (errorBits != 0) {
    std::string what;
    if (errorBits & kErrorCandidateOverflow) what += " candidate buffer overflow;";
    if (errorBits & kErrorSelectMismatch) what += " radix select count mismatch;";
    if (errorBits & kErrorCountAboveK) what += " more than k survivors at the final sort;";
    throw Error(ErrorCode::Internal, "GpuFlatSearcher::search: device-side check failed:" + what +
                                         " (a bug in cangen: please report it)");
  }
}

}  // namespace cangen::gpu
