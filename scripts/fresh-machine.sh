#!/usr/bin/env bash
# The README's quick start on a fresh machine: a Debian bookworm minbase chroot (debootstrap) with
# nothing but this machine's Node and npm copied in, a clone of this checkout's HEAD, then
# `npm ci && npm run simulate` inside it as root. Checks that it succeeds, prints no npm warning
# and leaves the clone's tracked files untouched. Needs root, debootstrap and network access to
# the Debian archive and the npm registry; takes 5-10 minutes on two cores.
#
#   sudo bash scripts/fresh-machine.sh [workdir]    (default: a new temporary directory, removed after)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cangen-fresh.XXXXXX")}
chroot_dir="$work/root"
command -v debootstrap >/dev/null || { echo "fresh-machine: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

cleanup() {
  umount "$chroot_dir/proc" "$chroot_dir/dev" 2>/dev/null || true
  [ -n "${1:-}" ] || rm -rf "$work"
}
trap 'cleanup ${1:-}' EXIT

if [ ! -f "$chroot_dir/.debootstrapped" ]; then
  echo "fresh-machine: debootstrap bookworm (minbase) into $chroot_dir"
  debootstrap --variant=minbase bookworm "$chroot_dir" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1
  touch "$chroot_dir/.debootstrapped"
fi
node_prefix=$(dirname "$(dirname "$(command -v node)")")
cp "$(command -v node)" "$chroot_dir/usr/bin/node"
mkdir -p "$chroot_dir/usr/lib/node_modules"
cp -a "$node_prefix/lib/node_modules/npm" "$chroot_dir/usr/lib/node_modules/"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$chroot_dir/usr/bin/npm"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
# A proxy's CA, where this machine reaches the registries through one (not part of the test).
ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$chroot_dir/etc/extra-ca.crt"
  ca=(NODE_EXTRA_CA_CERTS=/etc/extra-ca.crt npm_config_cafile=/etc/extra-ca.crt)
fi
rm -rf "$chroot_dir/root/cangen"
git clone -q "$root" "$chroot_dir/root/cangen"
mountpoint -q "$chroot_dir/proc" || mount -t proc proc "$chroot_dir/proc"
mountpoint -q "$chroot_dir/dev" || mount --bind /dev "$chroot_dir/dev"

echo "fresh-machine: npm ci && npm run simulate (log: $work/run.log)"
start=$(date +%s)
status=0
chroot "$chroot_dir" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${ca[@]}" \
  bash -c 'cd /root/cangen && npm ci --no-audit --no-fund && npm run simulate' > "$work/run.log" 2>&1 || status=$?
echo "fresh-machine: exit $status after $(( $(date +%s) - start )) s"
grep '^cangen:' "$work/run.log" || true
tail -n 3 "$work/run.log"
warnings=$(grep -c '^npm warn' "$work/run.log" || true)
dirty=$(git -C "$chroot_dir/root/cangen" status --porcelain | wc -l)
echo "fresh-machine: npm warnings $warnings, files changed or added $dirty"
[ "$status" = 0 ] && [ "$warnings" = 0 ] && [ "$dirty" = 0 ]
