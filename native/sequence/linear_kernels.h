#pragma once
// The kernels behind Linear::apply (layers.h), one per instruction set, chosen once at run time.
// Every kernel sums each output's inputs in the same order (i = 0, 1, ...) with fused
// multiply-adds from the bias, so all of them give bit-identical results: the choice changes the
// speed, never an embedding (sessions and parity rely on it). Internal to native/sequence.
#include <cmath>
#include <cstddef>

namespace cangen::sequence {

// Outputs [from, out) of rows [r0, r1), one at a time: the scalar kernel, and the vector kernels'
// last columns.
inline void linearColumns(const float* x, int r0, int r1, const float* weightT, const float* bias, int in, int out, int from, float* y) {
  for (int r = r0; r < r1; ++r) {
    for (int o = from; o < out; ++o) {
      float sum = bias[o];
      for (int i = 0; i < in; ++i) sum = std::fma(x[static_cast<size_t>(r) * in + i], weightT[static_cast<size_t>(i) * out + o], sum);
      y[static_cast<size_t>(r) * out + o] = sum;
    }
  }
}

// y (rows x out) = x (rows x in) weightT (in x out) + bias (out).
using LinearKernel = void (*)(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y);

void linearScalar(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y);
#if defined(__AVX2__) && defined(__FMA__)
void linearAvx2(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y);
void linearAvx512(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y);
#endif

// The fastest kernel this CPU runs: AVX-512 where the CPU has it, else AVX2 (the build's
// baseline), else scalar. CANGEN_SEQUENCE_SIMD=avx2 (or scalar) forces a slower one, for tests.
LinearKernel bestLinearKernel();
const char* linearKernelName(LinearKernel kernel);

}  // namespace cangen::sequence
