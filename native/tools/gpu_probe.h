#pragma once
// Device ceilings measured by the check driver itself, so that timings are compared with what
// the same card does in the same run (not with a datasheet).
#include <cstddef>
#include <string>

namespace cangen::tools {

struct DeviceCeilings {
  double copyGBps = 0;   // device-to-device cudaMemcpy, (read + write) bytes / second / 1e9
  double fmaGflops = 0;  // fp32 FMA throughput of a register-resident kernel, 2 flops per FMA
  size_t copyBytes = 0;  // size of the buffer copied
};

// Throws std::runtime_error when CUDA is not compiled in or the device fails.
DeviceCeilings measureCeilings(int device);

// Free device memory in bytes (0 without CUDA).
size_t freeDeviceBytes(int device);

}  // namespace cangen::tools
