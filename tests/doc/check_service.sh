#!/usr/bin/env bash
# check_service.sh [SOURCE_DIR] - examples/pcfs.service is a valid systemd
# unit: `systemd-analyze verify` accepts it without a word of complaint
# (unknown keys are only warnings, so any output fails).  Its ExecStart
# names the installed /usr/local/bin/pcfs; the check points it at the built
# one, which verify requires to exist.
set -u
src=${1:-${PCFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}}
unit=$src/examples/pcfs.service
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: no systemd-analyze here; the unit is not verified"
	exit 77
fi
pcfs=${PCFS:-$(command -v pcfs || echo /bin/true)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/pcfs|$pcfs|" "$unit" > "$tmp/pcfs.service"
grep -q '^ExecStart=.* -f ' "$tmp/pcfs.service" || { echo "FAIL ExecStart runs pcfs without -f (Type=simple needs it)"; exit 1; }
out=$(systemd-analyze verify --man=no "$tmp/pcfs.service" 2>&1); rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "FAIL systemd-analyze verify examples/pcfs.service (status $rc):"
	echo "$out" | sed 's/^/     | /'
	exit 1
fi
echo "ok   systemd-analyze verify examples/pcfs.service"
