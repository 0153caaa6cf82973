// AVX-512 build of the bf16 and int8 scan kernels; compiled with -mavx512bf16 -mavx512vnni.
#define CANGEN_SCAN_NS scan_reduced_avx512
#define CANGEN_LANES 16
#define CANGEN_REDUCED_DOT 1
#include "flat/scan_reduced_kernel.inl"
