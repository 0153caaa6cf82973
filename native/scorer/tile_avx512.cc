// AVX-512 build of the scorer's tile kernels (16 floats per register, 8 x 2 accumulators).
// The target pragma stands in for per-file -mavx512* flags; the function is only called after
// the CPU was checked (tile.cc).
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#define CANGEN_TILE_NS tile_avx512
#define CANGEN_TILE_NAME "avx512"
#define CANGEN_LANES 16
#define CANGEN_ROWS 8
#include "scorer/tile_kernel.inl"
