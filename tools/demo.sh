#!/usr/bin/env bash
# Build pcfs, mount it on a temporary directory, run examples/quickstart.sh
# against the mount, unmount.  Usage: bash tools/demo.sh [EXAMPLE.sh]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
mnt=$(mktemp -d /tmp/pcfs-demo.XXXXXX)
./build/pcfs "$mnt"          # daemonizes once mounted
trap 'fusermount3 -u "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null' EXIT
echo "pcfs mounted on $mnt"
PCFS_MOUNT="$mnt" bash "${1:-examples/quickstart.sh}" "$mnt"
