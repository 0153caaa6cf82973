// Measures the two ceilings the timing table is compared with: device memory bandwidth (a large
// device-to-device cudaMemcpy) and fp32 FMA throughput (a kernel whose operands stay in registers).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/gpu_probe.h"

namespace cangen::tools {

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(status));
}

constexpr int kFmaChains = 8;     // independent accumulators per thread (hides FMA latency)
constexpr int kFmaIterations = 4096;

__global__ void fmaKernel(float* out, float a, float b) {
  float acc[kFmaChains];
#pragma unroll
  for (int c = 0; c < kFmaChains; ++c) acc[c] = static_cast<float>(threadIdx.x + c);
  for (int i = 0; i < kFmaIterations; ++i) {
#pragma unroll
    for (int c = 0; c < kFmaChains; ++c) acc[c] = fmaf(acc[c], a, b);
  }
  float sum = 0.0f;
#pragma unroll
  for (int c = 0; c < kFmaChains; ++c) sum += acc[c];
  if (sum == 1234.5f) out[0] = sum;  // practically never: keeps the loop alive
}

struct Events {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  Events() {
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Events() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  float elapsedMs() {
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    return ms;
  }
};

template <typename F>
float medianMs(int reps, F&& body) {
  Events ev;
  std::vector<float> times;
  body();  // warm-up
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(ev.start), "cudaEventRecord");
    body();
    check(cudaEventRecord(ev.stop), "cudaEventRecord");
    times.push_back(ev.elapsedMs());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

DeviceCeilings measureCeilings(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  DeviceCeilings result;
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");

  // Bandwidth: copy a buffer much larger than L2 (1 GiB, or less if memory is short).
  size_t freeBytes = 0, totalBytes = 0;
  check(cudaMemGetInfo(&freeBytes, &totalBytes), "cudaMemGetInfo");
  size_t bytes = std::min<size_t>(size_t{1} << 30, freeBytes / 4);
  bytes &= ~size_t{255};
  void* src = nullptr;
  void* dst = nullptr;
  check(cudaMalloc(&src, bytes), "cudaMalloc");
  cudaError_t status = cudaMalloc(&dst, bytes);
  if (status != cudaSuccess) {
    cudaFree(src);
    check(status, "cudaMalloc");
  }
  try {
    check(cudaMemset(src, 1, bytes), "cudaMemset");
    const float ms = medianMs(10, [&] { check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); });
    result.copyBytes = bytes;
    result.copyGBps = 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
  } catch (...) {
    cudaFree(src);
    cudaFree(dst);
    throw;
  }
  cudaFree(src);
  cudaFree(dst);

  // FMA throughput: enough resident blocks to fill every SM several times.
  float* out = nullptr;
  check(cudaMalloc(&out, sizeof(float)), "cudaMalloc");
  const int threads = 256;
  const int blocks = prop.multiProcessorCount * 16;
  float ms = 0;
  try {
    ms = medianMs(10, [&] {
      fmaKernel<<<blocks, threads>>>(out, 0.999f, 0.001f);
      check(cudaGetLastError(), "fmaKernel launch");
    });
  } catch (...) {
    cudaFree(out);
    throw;
  }
  cudaFree(out);
  const double flops = 2.0 * blocks * threads * static_cast<double>(kFmaIterations) * kFmaChains;
  result.fmaGflops = flops / (ms * 1e-3) / 1e9;
  return result;
}

size_t freeDeviceBytes(int device) {
  if (cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  size_t freeBytes = 0, totalBytes = 0;
  if (cudaMemGetInfo(&freeBytes, &totalBytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return freeBytes;
}

}  // namespace cangen::tools
