// AVX-512 build of the scorer's tile kernels (16 floats per register, 8 x 2 accumulators), and of
// its bf16 tiles with VDPBF16PS; compiled with -mavx512* -mavx512bf16 (CMakeLists.txt). The fp32
// functions are only called after the CPU was checked for AVX-512 (tile.cc), the bf16 ones after
// it was checked for AVX-512 BF16 too (tile_bf16.cc). No fp32 code uses bf16 types, so the bf16
// flag adds no instruction to the fp32 kernels.
#define CANGEN_TILE_NS tile_avx512
#define CANGEN_TILE_NAME "avx512"
#define CANGEN_LANES 16
#define CANGEN_ROWS 8
#define CANGEN_REDUCED_DOT 1
#include "scorer/tile_kernel.inl"
#include "scorer/tile_bf16_kernel.inl"
