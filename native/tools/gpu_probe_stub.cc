// Built when CUDA is not compiled in: the driver never gets this far (no device), but links.
#include <stdexcept>

#include "tools/gpu_probe.h"

namespace cangen::tools {

DeviceCeilings measureCeilings(int) { throw std::runtime_error("CUDA support was not compiled in"); }
size_t freeDeviceBytes(int) { return 0; }

}  // namespace cangen::tools
