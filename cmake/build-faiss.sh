#!/usr/bin/env bash
# Builds FAISS (static, position-independent, CPU only) once and caches it outside the addon's
# build directory, keyed by version and flags, so rebuilding the addon never rebuilds FAISS.
#
# Usage: build-faiss.sh <prefix>
#   CANGEN_FAISS_SOURCE_DIR  use this FAISS source tree instead of fetching Debian's 1.7.3 source
#   CANGEN_FAISS_OPT_LEVEL   generic | avx2 (default avx2)
#   CANGEN_BUILD_JOBS        parallel jobs (default: nproc)
# On success <prefix>/include/faiss/*.h and <prefix>/lib/libfaiss.a exist, and
# <prefix>/.complete marks the build as finished (a half-built cache is never used).
set -euo pipefail

prefix=${1:?usage: build-faiss.sh <install-prefix>}
opt=${CANGEN_FAISS_OPT_LEVEL:-avx2}
jobs=${CANGEN_BUILD_JOBS:-$(nproc)}
[ -f "$prefix/.complete" ] && { echo "cangen: FAISS already built in $prefix"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cangen-faiss.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=${CANGEN_FAISS_SOURCE_DIR:-}
if [ -z "$src" ]; then
  # Debian's source package through apt's own client, with a private deb-src list and state so
  # the system's apt configuration is left untouched.
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/parts" "$work/dl"
  # deb822 files (Debian 12, Ubuntu 24.04) or the one-line sources.list (older Ubuntu).
  found=0
  for list in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/ubuntu.sources; do
    [ -f "$list" ] || continue
    sed 's/^Types: deb$/Types: deb-src/' "$list" > "$work/apt/parts/$(basename "$list")"
    found=1
  done
  if [ "$found" = 0 ] && [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > "$work/apt/parts/src.list"
    found=1
  fi
  [ "$found" = 1 ] || { echo "cangen: no apt sources found to fetch FAISS's source from; set CANGEN_FAISS_SOURCE_DIR" >&2; exit 1; }
  apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/apt/parts"
            -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "APT::Sandbox::User=root")
  echo "cangen: fetching FAISS source with apt-get source"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work/dl" && apt-get "${apt_opts[@]}" source --download-only -qq faiss)
  tar -xzf "$work"/dl/faiss_*.orig.tar.gz -C "$work"
  src=$(find "$work" -maxdepth 1 -type d -name 'faiss-*' | head -n 1)
fi
[ -f "$src/faiss/Index.h" ] || { echo "cangen: $src is not a FAISS source tree (no faiss/Index.h)" >&2; exit 1; }

target=faiss
[ "$opt" = avx2 ] && target=faiss_avx2
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
echo "cangen: building FAISS ($target) from $src with $jobs jobs"
cmake -S "$src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_OPT_LEVEL="$opt" -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DBUILD_TESTING=OFF \
  -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
cmake --build "$work/build" --target "$target" -j "$jobs"

rm -rf "$prefix.partial"
mkdir -p "$prefix.partial/lib" "$prefix.partial/include"
(cd "$src" && find faiss -name '*.h' -not -path 'faiss/gpu/*' -exec cp --parents {} "$prefix.partial/include/" \;)
cp "$(find "$work/build" -name "lib$target.a" | head -n 1)" "$prefix.partial/lib/libfaiss.a"
echo "$opt" > "$prefix.partial/opt-level"
grep -A3 '^project(faiss' "$src/CMakeLists.txt" | sed -n 's/.*VERSION \([0-9.]*\).*/\1/p' | head -n 1 > "$prefix.partial/version"
touch "$prefix.partial/.complete"
rm -rf "$prefix" && mv "$prefix.partial" "$prefix"
echo "cangen: FAISS installed in $prefix"
