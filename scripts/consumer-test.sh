#!/usr/bin/env bash
# Installs cangen as a Node service would: npm pack (with the prebuild), install the tarball into
# a fresh temporary project, and run a search there. Fails if anything gets compiled on install.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

[ -f prebuilds/linux-x64/cangen.node ] || npm run prebuilds
[ -d dist ] || npm run build:ts
tarball=$(npm pack --silent | tail -n 1)
trap 'rm -f "$root/$tarball"' EXIT

project=$(mktemp -d "${TMPDIR:-/tmp}/cangen-consumer.XXXXXX")
trap 'rm -f "$root/$tarball"; rm -rf "$project"' EXIT
cd "$project"
npm init -y >/dev/null
# CANGEN_CONSUMER_NO_BUILD makes a build attempt fail loudly instead of silently compiling.
CANGEN_CONSUMER_NO_BUILD=1 npm install --no-audit --no-fund "$root/$tarball" 2>&1 | tail -n 3
if [ -d node_modules/cangen/build ]; then
  echo "consumer test: the install compiled the addon instead of using the prebuild" >&2
  exit 1
fi
cat > service.mjs <<'JS'
import cangen from 'cangen';
const { FlatIndex, buildInfo } = cangen;
const dim = 8;
const index = new FlatIndex({ dim, metric: 'cosine' });
const vectors = new Float32Array(100 * dim).map((_, i) => Math.sin(i));
await index.add(Array.from({ length: 100 }, (_, i) => i + 1), vectors);
const results = await index.search(vectors.subarray(42 * dim, 43 * dim), 3);
const best = results.row(0);
if (best.ids[0] !== 43n || Math.abs(best.scores[0] - 1) > 1e-5) throw new Error(`unexpected result ${best.ids} ${best.scores}`);
console.log(`consumer test: ok (cangen ${buildInfo().version}, top id ${best.ids[0]}, score ${best.scores[0].toFixed(4)})`);
JS
node service.mjs
