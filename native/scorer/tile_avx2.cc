// AVX2 build of the scorer's tile kernels (8 floats per register, 4 x 2 accumulators), and of its
// bf16 tiles (the bf16 products computed with fused multiply-adds).
#define CANGEN_TILE_NS tile_avx2
#define CANGEN_TILE_NAME "avx2"
#define CANGEN_LANES 8
#define CANGEN_ROWS 4
#include "scorer/tile_kernel.inl"
#include "scorer/tile_bf16_kernel.inl"
