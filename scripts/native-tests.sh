#!/usr/bin/env bash
# Builds and runs the native C++ tests (test/native, GoogleTest) without Node.
#   bash scripts/native-tests.sh              plain build in build/native
#   bash scripts/native-tests.sh --sanitize   ASan + UBSan build in build/native-sanitize
# Extra arguments after the flag go to the test binary (e.g. --gtest_filter=FlatSearch.*).
# CUDA is left out: these tests are about the CPU core (the GPU has scripts/gpu-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build/native
flags=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  dir=build/native-sanitize
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCANGEN_SANITIZE=address,undefined)
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# A directory left by a failed configure is reconfigured from scratch.
[ -f "$dir/CMakeCache.txt" ] && [ ! -f "$dir/build.ninja" ] && [ ! -f "$dir/Makefile" ] && rm -rf "$dir"
cmake -S . -B "$dir" "${generator[@]}" -DCANGEN_BUILD_NATIVE_TESTS=ON -DCANGEN_WITH_CUDA=OFF "${flags[@]}" >/dev/null
cmake --build "$dir" --target cangen_native_tests --parallel "${CANGEN_BUILD_JOBS:-$(nproc)}"
# One BLAS thread: the tests are small, and OpenBLAS's spinning threads on a busy machine made
# FAISS training take seconds per test.
OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" "$dir/test/native/cangen_native_tests" "$@"
