#!/usr/bin/env bash
# One command for a session that has a CUDA GPU: build, check, time and sanitize the GPU exact search.
#
#   scripts/gpu-check.sh [all|build|check|sanitize|node]     (default: all)
#
#   build     configure and build cangen_gpu_check (see "Build" below)
#   check     cangen_gpu_check: correctness checks + timing table; JSON to
#             ${OUT:-bench/results}/gpu-check-<UTC date>.json
#   sanitize  compute-sanitizer memcheck, racecheck and synccheck on `--checks-only` (small shapes);
#             fails on any reported error
#   node      the Node GPU tests (npx uvu -r tsx test gpu), when node_modules exists; among them the
#             scorer's launch limits (test/scorer-gpu.test.ts): a model too wide for shared memory
#             falls back to the CPU (gpuFallback set), and 70,000 users (> grid.y) equal the CPU;
#             and the sequence encoder (HSTU, SASRec) on the GPU against the CPU (test/sequence-gpu.test.ts)
# Each step after `build` builds first when needed; the device tool limits one command to
# 10 minutes, so a session may run the steps as separate commands.
#
# Build. The full tree is configured with
#   cmake -S . -B build-gpu -DCANGEN_BUILD_TOOLS=ON -DCMAKE_BUILD_TYPE=Release
# which needs FAISS (cmake/Faiss.cmake) and OpenBLAS (cmake/BlasStatic.cmake). FAISS is normally built
# once into ~/.cache/cangen/faiss-1.7.3-avx2 from source fetched with apt; the GPU machine has no
# network, so either
#   - carry a FAISS build made on a networked machine (it is ~9 MiB): copy ~/.cache/cangen/faiss-1.7.3-avx2
#     to an ignored folder of the repo, e.g. build-cache/faiss-1.7.3-avx2, carry build-cache, and run
#     with CANGEN_CACHE_DIR=$PWD/build-cache (read by both this build and the addon's cmake-js build;
#     CANGEN_FAISS_PREFIX=<dir> also works for this build only). OpenBLAS must then be on the GPU
#     machine (libopenblas-dev, or CANGEN_OPENBLAS_STATIC=/path/to/libopenblas.a: 58 MB, too big to
#     carry next to FAISS within the 64 MiB carry limit), or
#   - let this script skip the full build: when no FAISS build is found it compiles cangen_gpu_check
#     alone with nvcc (the CUDA search, the error type and the driver need nothing else).
#     The Node tests are then not run (the addon needs the full build).
# Environment: OUT (results folder), CANGEN_GPU_BUILD_DIR (default build-gpu), CANGEN_FAISS_PREFIX,
# CANGEN_OPENBLAS_STATIC, CANGEN_SANITIZER_TIMEOUT (seconds per sanitizer tool, default 480),
# CANGEN_GPU_DEVICE (default 0).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
step=${1:-all}
case "$step" in all | build | check | sanitize | node) ;; *)
  echo "usage: $0 [all|build|check|sanitize|node]" >&2
  exit 2
  ;;
esac

build=${CANGEN_GPU_BUILD_DIR:-build-gpu}
out_dir=${OUT:-bench/results}
device=${CANGEN_GPU_DEVICE:-0}
sanitizer_timeout=${CANGEN_SANITIZER_TIMEOUT:-480}
jobs=$(nproc 2>/dev/null || echo 4)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
json="$out_dir/gpu-check-$stamp.json"
mkdir -p "$build" "$out_dir"

summary=()
failed=0
note() { summary+=("$1"); }
fail() {
  summary+=("FAIL $1")
  failed=1
}

nvcc_bin=$(command -v nvcc || true)
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
sanitizer=$(command -v compute-sanitizer || true)
[ -z "$sanitizer" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
[ -z "$sanitizer" ] && [ -n "$nvcc_bin" ] && [ -x "$(dirname "$(readlink -f "$nvcc_bin")")/compute-sanitizer" ] &&
  sanitizer="$(dirname "$(readlink -f "$nvcc_bin")")/compute-sanitizer"

# Where cmake/Faiss.cmake would look for a finished FAISS build (same rules as that file).
faiss_prefix() {
  if [ -n "${CANGEN_FAISS_PREFIX:-}" ]; then echo "$CANGEN_FAISS_PREFIX"; return; fi
  local root
  if [ -n "${CANGEN_CACHE_DIR:-}" ]; then root=$CANGEN_CACHE_DIR
  elif [ -n "${XDG_CACHE_HOME:-}" ]; then root=$XDG_CACHE_HOME/cangen
  else root=$HOME/.cache/cangen; fi
  echo "$root/faiss-1.7.3-${CANGEN_FAISS_OPT_LEVEL:-avx2}"
}

tool=""
full_build=0
build_tool() {
  [ -n "$tool" ] && return 0
  local prefix
  prefix=$(faiss_prefix)
  local can_full=1
  if [ "${CANGEN_FAISS:-build}" != system ] && [ -z "${CANGEN_FAISS_SOURCE_DIR:-}" ] && [ ! -f "$prefix/.complete" ]; then
    echo "gpu-check: no FAISS build in $prefix (and no network to make one): skipping the full CMake build"
    can_full=0
  fi
  if [ "$can_full" = 1 ]; then
    local args=(-S . -B "$build" -DCANGEN_BUILD_TOOLS=ON -DCMAKE_BUILD_TYPE=Release)
    [ -n "${CANGEN_FAISS_PREFIX:-}" ] && args+=("-DCANGEN_FAISS_PREFIX=$CANGEN_FAISS_PREFIX")
    [ -n "${CANGEN_OPENBLAS_STATIC:-}" ] && args+=("-DCANGEN_OPENBLAS_STATIC=$CANGEN_OPENBLAS_STATIC")
    [ -n "${CANGEN_FAISS:-}" ] && args+=("-DCANGEN_FAISS=$CANGEN_FAISS")
    echo "gpu-check: cmake ${args[*]}"
    if cmake "${args[@]}" >"$build/configure.log" 2>&1 &&
      cmake --build "$build" --target cangen_gpu_check -j "$jobs" 2>&1 | tee "$build/build.log" | tail -n 5 &&
      [ "${PIPESTATUS[0]}" = 0 ] && [ -x "$build/native/tools/cangen_gpu_check" ]; then
      if grep -q "CUDA kernels enabled" "$build/configure.log"; then
        tool="$build/native/tools/cangen_gpu_check"
        full_build=1
        note "build: full CMake build ($build), CUDA enabled"
        return 0
      fi
      echo "gpu-check: CMake did not enable CUDA (see $build/configure.log)"
    else
      echo "gpu-check: the full CMake build failed (see $build/configure.log and $build/build.log)"
      tail -n 15 "$build/configure.log" 2>/dev/null
    fi
  fi
  # Standalone: only the CUDA search, the error type and the driver.
  if [ -z "$nvcc_bin" ]; then
    fail "build: nvcc not found"
    return 1
  fi
  mkdir -p "$build/standalone"
  echo "gpu-check: building cangen_gpu_check alone with $nvcc_bin"
  if "$nvcc_bin" -std=c++17 -O3 -Inative -DCANGEN_WITH_CUDA=1 \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -Xcompiler=-Wall -cudart static \
    native/cuda/gpu_flat_search.cu native/tools/gpu_probe.cu native/tools/gpu_check.cc native/common/error.cc \
    -o "$build/standalone/cangen_gpu_check" -lpthread; then
    tool="$build/standalone/cangen_gpu_check"
    note "build: standalone nvcc build ($tool); Node addon not built"
    return 0
  fi
  fail "build: standalone nvcc build failed"
  return 1
}

run_check() {
  build_tool || return 1
  echo "gpu-check: $tool --device $device --json $json"
  "$tool" --device "$device" --json "$json" | tee "$build/check.log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$build/check.log" | tail -n 1)
  if grep -q '^skipped: no CUDA device' "$build/check.log"; then
    fail "check: $(grep '^skipped' "$build/check.log")"
  elif [ "$rc" = 0 ]; then
    note "check: $line; timings in $json"
  else
    fail "check: exit $rc, ${line:-no summary}; see $build/check.log"
    grep '^FAIL' "$build/check.log" | head -n 20 | sed 's/^/    /'
  fi
}

run_sanitizer() {
  build_tool || return 1
  if [ -z "$sanitizer" ]; then
    fail "sanitize: compute-sanitizer not found"
    return 1
  fi
  local t
  for t in memcheck racecheck synccheck; do
    local log="$build/sanitize-$t.log"
    local extra=()
    [ "$t" = memcheck ] && extra=(--leak-check full)
    echo "gpu-check: compute-sanitizer --tool $t ${extra[*]} $tool --checks-only"
    timeout "$sanitizer_timeout" "$sanitizer" --tool "$t" "${extra[@]}" --error-exitcode 99 \
      "$tool" --checks-only --device "$device" >"$log" 2>&1
    local rc=$?
    local errors
    errors=$(grep -E '========= (ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY)' "$log" | tr '\n' ' ')
    if [ "$rc" = 124 ]; then
      fail "sanitize $t: timed out after ${sanitizer_timeout}s (log $log)"
    elif [ "$rc" = 0 ] && ! grep -q '^FAIL' "$log"; then
      note "sanitize $t: clean (${errors:-no summary line})"
    else
      fail "sanitize $t: exit $rc ${errors}(log $log)"
      grep -E '^=========' "$log" | head -n 20 | sed 's/^/    /'
    fi
  done
}

run_node() {
  if [ ! -d node_modules ]; then
    note "node: not run (no node_modules; run npm ci first)"
    return 0
  fi
  build_tool || true
  if [ "$full_build" = 1 ]; then
    echo "gpu-check: npm run build:native (CUDA on)"
    if ! npm run --silent build:native >"$build/addon-build.log" 2>&1; then
      fail "node: the addon build failed (log $build/addon-build.log)"
      return 1
    fi
  elif [ -f build/Release/cangen.node ]; then
    echo "gpu-check: no full build possible here; testing the existing build/Release/cangen.node"
  else
    note "node: not run (no addon, and the full build was not possible here)"
    return 0
  fi
  echo "gpu-check: npx uvu -r tsx test gpu -i helpers -i '\\.cc\$'"
  npx uvu -r tsx test gpu -i helpers -i '\.cc$' 2>&1 | tee "$build/node.log"
  local rc=${PIPESTATUS[0]}
  local total
  total=$(sed 's/\x1b\[[0-9;]*m//g' "$build/node.log" | grep -E 'Total|Passed|Skipped' | tr -s ' \n' ' ')
  if grep -q 'skipped: no CUDA device' "$build/node.log"; then
    fail "node: the addon sees no CUDA device ($(grep -m1 'skipped: no CUDA device' "$build/node.log"))"
  elif [ "$rc" = 0 ]; then
    note "node: $total"
  else
    fail "node: exit $rc $total (log $build/node.log)"
  fi
  # The same GPU tests (exact search, AdIndex flat, learned scorers) under memcheck: catches
  # out-of-bounds accesses the result comparisons cannot see.
  if command -v compute-sanitizer >/dev/null; then
    echo "gpu-check: compute-sanitizer --tool memcheck on the Node GPU tests"
    timeout "$sanitizer_timeout" compute-sanitizer --tool memcheck --error-exitcode 86 \
      node node_modules/uvu/bin.js -r tsx test gpu -i helpers -i '\.cc$' >"$build/node-memcheck.log" 2>&1
    local src=$?
    if grep -q 'ERROR SUMMARY: 0 errors' "$build/node-memcheck.log" && [ "$src" = 0 ]; then
      note "node memcheck: 0 errors"
    else
      fail "node memcheck: exit $src (log $build/node-memcheck.log)"
    fi
  fi
}

if command -v nvidia-smi >/dev/null; then
  note "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)"
fi
case "$step" in
  build) build_tool ;;
  check) run_check ;;
  sanitize) run_sanitizer ;;
  node) run_node ;;
  all)
    run_check
    run_sanitizer
    run_node
    ;;
esac

echo
echo "==== gpu-check summary ($step, $stamp) ===="
for line in "${summary[@]}"; do echo "  $line"; done
if [ "$failed" = 0 ]; then echo "gpu-check: OK"; else echo "gpu-check: FAILED"; fi
exit "$failed"
