#!/usr/bin/env bash
# Install what building, running and testing pcfs needs (Debian 12 packages).
# Idempotent; as root it uses apt-get, otherwise it only checks.
set -euo pipefail
pkgs=(build-essential pkg-config meson ninja-build libfuse3-dev fuse3 libinih-dev
      libcmocka-dev jq bc python3 procps valgrind socat hyperfine parallel gnuplot-nox clang
      libclang-rt-14-dev groff-base man-db file task-spooler strace)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages (run as root to install): ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
