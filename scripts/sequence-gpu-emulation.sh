#!/usr/bin/env bash
# Checks the sequence encoder's CUDA code without a GPU: sequence_gpu.cu (its <<<...>>> launches
# rewritten as calls) and sequence_kernel.cuh compiled by g++ against the CPU stand-in of
# test/cuda-emulation/cuda_runtime.h, then encodeOnGpu compared with the CPU encoder
# (test/cuda-emulation/sequence_gpu_check.cc). Slow (a host thread per CUDA thread): minutes.
#   scripts/sequence-gpu-emulation.sh [case numbers...]     (default: every case)
# CUDA_EMULATION_FREE_BYTES=110400 makes the device look small, so users go in many batches.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=build/cuda-emulation
mkdir -p "$out"
sed -E 's/([A-Za-z_:]+)<<<(.*)>>>\(/cuda_emulation::launch(\1, cuda_emulation::config(\2), /' native/cuda/sequence_gpu.cu >"$out/sequence_gpu.cc"
if grep -q '<<<' "$out/sequence_gpu.cc"; then
  echo "sequence-gpu-emulation: a launch the rewrite missed:" >&2
  grep -n '<<<' "$out/sequence_gpu.cc" >&2
  exit 1
fi
g++ -std=c++17 -O1 -march="${CANGEN_BASELINE_ARCH:-x86-64-v3}" -fopenmp -pthread -Itest/cuda-emulation -Inative \
  -o "$out/sequence_gpu_check" test/cuda-emulation/sequence_gpu_check.cc "$out/sequence_gpu.cc" native/sequence/*.cc \
  native/common/error.cc native/common/parallel.cc native/common/threads.cc native/common/limits.cc
"$out/sequence_gpu_check" "$@"
