#pragma once
// Host-side helpers shared by the CUDA launchers: a checked-call macro that throws
// cangen::Error(Internal), and RAII owners for device memory, streams and events.
// Destructors never throw: a failure while releasing is ignored (there is nobody to tell).
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "common/cuda_status.h"
#include "common/error.h"

namespace cangen::gpu {

// A sticky error (the context is lost for the rest of the process) is NoDevice, which tells the
// owners of cached device state to drop it; any other is Internal.
[[noreturn]] inline void throwCudaError(const char* call, cudaError_t status) {
  const std::string what = std::string(call) + " failed: " + cudaGetErrorString(status);
  if (isStickyCudaError(static_cast<int>(status))) {
    throw Error(ErrorCode::NoDevice, what + ". The CUDA context is lost: GPU searches fail until the process restarts");
  }
  throw Error(ErrorCode::Internal, what);
}

}  // namespace cangen::gpu

// Evaluates a CUDA runtime call once; throws Error(Internal, "<call> failed: <reason>") on error.
#define CANGEN_CUDA_CHECK(call)                                            \
  do {                                                                     \
    const cudaError_t cangenCudaStatus_ = (call);                          \
    if (cangenCudaStatus_ != cudaSuccess) {                                \
      ::cangen::gpu::throwCudaError(#call, cangenCudaStatus_);             \
    }                                                                      \
  } while (0)

// After a <<<...>>> launch: a bad configuration is reported by cudaGetLastError.
#define CANGEN_CUDA_CHECK_LAUNCH(name) CANGEN_CUDA_CHECK_NAMED(name, cudaGetLastError())
#define CANGEN_CUDA_CHECK_NAMED(name, call)                                \
  do {                                                                     \
    const cudaError_t cangenCudaStatus_ = (call);                          \
    if (cangenCudaStatus_ != cudaSuccess) {                                \
      ::cangen::gpu::throwCudaError(name, cangenCudaStatus_);              \
    }                                                                      \
  } while (0)

namespace cangen::gpu {

// An owned device allocation of `size()` elements of T (contents undefined after reserve()).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

  T* data() const { return data_; }
  size_t capacity() const { return capacity_; }

  // Makes room for at least n elements. Returns true when it reallocated, in which case the old
  // contents are gone. With `growth` > 1, a reallocation takes max(n, growth * capacity).
  bool reserve(size_t n, double growth = 1.0) {
    if (n <= capacity_ && data_ != nullptr) return false;
    size_t target = n == 0 ? 1 : n;
    const size_t grown = static_cast<size_t>(static_cast<double>(capacity_) * growth);
    if (grown > target) target = grown;
    release();
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, target * sizeof(T));
    if (status != cudaSuccess) {
      cudaGetLastError();  // clear the (non-sticky) allocation error
      throw Error(ErrorCode::Internal, "cudaMalloc of " + std::to_string(target * sizeof(T)) +
                                           " bytes failed: " + cudaGetErrorString(status));
    }
    data_ = static_cast<T*>(p);
    capacity_ = target;
    return true;
  }

  void release() noexcept {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

// Why CUDA device `device` cannot be used ("" when it can): no driver, no device, or no such ordinal.
inline std::string unusableDeviceReason(int device) {
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

// Copies n host values into `buffer` (grown to hold them, see DeviceBuffer::reserve) on `stream`.
// From pageable memory the host buffer may be reused once the call returns.
template <typename T>
void upload(DeviceBuffer<T>& buffer, const T* data, size_t n, cudaStream_t stream, double growth = 1.0) {
  buffer.reserve(n > 0 ? n : 1, growth);
  if (n > 0) CANGEN_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), data, n * sizeof(T), cudaMemcpyHostToDevice, stream));
}

class Stream {
 public:
  Stream() { CANGEN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace cangen::gpu
