#pragma once
// CRC-32C (Castagnoli) with the SSE4.2 instruction, for checksumming saved indexes.
#include <cstddef>
#include <cstdint>

namespace cangen {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace cangen
