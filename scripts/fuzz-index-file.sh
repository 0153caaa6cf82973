#!/usr/bin/env bash
# Fuzzes the AdIndex file loader with libFuzzer under ASan + UBSan for a bounded time.
#   bash scripts/fuzz-index-file.sh [seconds]     (default 60)
# Builds with clang-14 in build/fuzz (FAISS from the usual cache), writes a seed corpus of one
# small saved index per kind to build/fuzz/seeds, and keeps what the fuzzer learns in
# build/fuzz/corpus. A crash, a sanitizer report, a leak, an allocation above the malloc limit or
# an unexpected error code fails the run; the input that did it is written to build/fuzz/.
# Needs: clang-14, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes), libomp-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
dir=build/fuzz
cxx=${CANGEN_FUZZ_CXX:-clang++-14}
cc=${CANGEN_FUZZ_CC:-clang-14}
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found (apt-get install clang-14 libclang-rt-14-dev libomp-14-dev)" >&2; exit 1; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$dir/CMakeCache.txt" ] && [ ! -f "$dir/build.ninja" ] && [ ! -f "$dir/Makefile" ] && rm -rf "$dir"
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCANGEN_WITH_CUDA=OFF -DCANGEN_BUILD_FUZZERS=ON \
  -DCANGEN_SANITIZE=address,undefined,fuzzer-no-link >/dev/null
cmake --build "$dir" --target cangen_index_file_fuzz cangen_index_file_seeds --parallel "${CANGEN_BUILD_JOBS:-$(nproc)}"

rm -rf "$dir/seeds"
mkdir -p "$dir/seeds" "$dir/corpus"
"$dir/test/fuzz/cangen_index_file_seeds" "$dir/seeds"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Seeds are a few tens of KiB; no input that size justifies a single allocation of 1 GiB.
"$dir/test/fuzz/cangen_index_file_fuzz" "$dir/corpus" "$dir/seeds" \
  -max_total_time="$seconds" -max_len=131072 -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=1024 \
  -artifact_prefix="$dir/" -print_final_stats=1
