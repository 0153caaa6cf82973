// AVX2 + FMA build of the scan kernel (8 floats per register).
#define CANGEN_SCAN_NS scan_avx2
#define CANGEN_LANES 8
#include "flat/scan_kernel.inl"
