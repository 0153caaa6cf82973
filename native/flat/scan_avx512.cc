// AVX-512 build of the scan kernel (16 floats per register); compiled with -mavx512*.
#define CANGEN_SCAN_NS scan_avx512
#define CANGEN_LANES 16
#include "flat/scan_kernel.inl"
