#pragma once
// A CPU stand-in for the few CUDA runtime and device features the sequence encoder's kernels use
// (native/cuda/sequence_gpu.cu, sequence_kernel.cuh), so that their host and device code can be
// checked against the CPU path on a machine without a GPU (scripts/sequence-gpu-emulation.sh).
// Each block runs as blockDim.x host threads with a real barrier for __syncthreads and one per
// warp for shuffles; blocks run one after another, so a __shared__ array (made static) is the
// block's own. Device memory is host memory filled with NaN bytes, so a read of a value the
// kernels never wrote shows up in the result. Not a CUDA model: no memory ordering or timing.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using std::max;
using std::min;
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __launch_bounds__(x)

enum cudaError_t { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost };
typedef void* cudaStream_t;
constexpr unsigned cudaStreamNonBlocking = 1;
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace cuda_emulation {

class Barrier {
 public:
  explicit Barrier(unsigned n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned generation = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      released_.notify_all();
    } else {
      released_.wait(lock, [&] { return generation != generation_; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  unsigned n_, arrived_ = 0, generation_ = 0;
};

struct Warp {
  Barrier barrier{32};
  double slots[32];
};

inline thread_local Barrier* block = nullptr;
inline thread_local Warp* warp = nullptr;
inline long launches = 0;

}  // namespace cuda_emulation

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

inline void __syncthreads() { cuda_emulation::block->wait(); }
inline double __shfl_xor_sync(unsigned, double v, int offset) {
  const unsigned lane = threadIdx.x % 32;
  cuda_emulation::warp->slots[lane] = v;
  cuda_emulation::warp->barrier.wait();
  const double other = cuda_emulation::warp->slots[lane ^ offset];
  cuda_emulation::warp->barrier.wait();
  return other;
}

inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n);
  std::memset(*p, 0xff, n);  // NaN
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(to, from, n);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<void*>(1);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
// Free memory: CUDA_EMULATION_FREE_BYTES (small values force many batches), else 1 GiB.
inline cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  const char* bytes = std::getenv("CUDA_EMULATION_FREE_BYTES");
  *free = *total = bytes ? std::strtoull(bytes, nullptr, 10) : size_t{1} << 30;
  return cudaSuccess;
}

namespace cuda_emulation {

struct Config {
  dim3 grid, block;
};
inline Config config(dim3 grid, dim3 block, size_t = 0, cudaStream_t = nullptr) { return {grid, block}; }

// kernel<<<grid, block, shared, stream>>>(args...) becomes launch(kernel, config(grid, block, shared, stream), args...).
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), Config c, Args... args) {
  ++launches;
  gridDim = c.grid;
  blockDim = c.block;
  const unsigned n = c.block.x;
  for (unsigned by = 0; by < c.grid.y; ++by) {
    for (unsigned bx = 0; bx < c.grid.x; ++bx) {
      Barrier barrier(n);
      std::vector<std::unique_ptr<Warp>> warps;
      for (unsigned w = 0; w < (n + 31) / 32; ++w) warps.push_back(std::make_unique<Warp>());
      std::vector<std::thread> threads;
      for (unsigned t = 0; t < n; ++t) {
        threads.emplace_back([&, t] {
          threadIdx = dim3(t);
          blockIdx = dim3(bx, by);
          block = &barrier;
          warp = warps[t / 32].get();
          kernel(static_cast<Params>(args)...);
        });
      }
      for (auto& thread : threads) thread.join();
    }
  }
}

}  // namespace cuda_emulation
