// AVX2 build of the bf16 and int8 scan kernels, without VDPBF16PS or VPDPBUSD.
#define CANGEN_SCAN_NS scan_reduced_generic
#define CANGEN_LANES 8
#include "flat/scan_reduced_kernel.inl"
