#!/usr/bin/env bash
# meson install puts every file where it belongs, and an installed pcfs
# works from its prefix: bin/pcfs finds libexec/pcfs-worker by itself, and
# man finds pcfs(1).
#   1. `meson install --destdir` of the build under test: the file list;
#   2. a fresh build with --prefix in a temporary directory, installed for
#      real, mounted, running a built-in workload (which needs the worker).
. "$(dirname "$0")/lib.sh"
: "${PCFS_BUILD_DIR:?PCFS_BUILD_DIR must name the build directory}"

echo "== meson install --destdir"
prefix=$(meson introspect "$PCFS_BUILD_DIR" --buildoptions |
	jq -r '.[] | select(.name == "prefix") | .value')
stage=$WORKDIR/stage
check "meson install --destdir" meson install -C "$PCFS_BUILD_DIR" --no-rebuild --quiet --destdir "$stage"
libexec=$(meson introspect "$PCFS_BUILD_DIR" --buildoptions |
	jq -r '.[] | select(.name == "libexecdir") | .value')
for f in bin/pcfs "$libexec/pcfs-worker" share/man/man1/pcfs.1 \
	 share/doc/pcfs/examples/pcfs.ini share/doc/pcfs/examples/pcfs.service; do
	check "installs $f" test -s "$stage$prefix/$f"
done
check "pcfs and pcfs-worker are executable" test -x "$stage$prefix/bin/pcfs" -a -x "$stage$prefix/$libexec/pcfs-worker"

echo "== a real prefix"
p=$WORKDIR/prefix
if ! meson setup "$WORKDIR/build" "$PCFS_SOURCE_DIR" --prefix "$p" -Dtests=false \
	>"$WORKDIR/setup.log" 2>&1 || ! ninja -C "$WORKDIR/build" >>"$WORKDIR/setup.log" 2>&1; then
	bad "build with --prefix $p"; tail -20 "$WORKDIR/setup.log"; finish; exit 1
fi
check "meson install (prefix $p)" meson install -C "$WORKDIR/build" --quiet
check "man finds pcfs(1) under the prefix" bash -c \
	"MANPATH='$p/share/man' MANWIDTH=80 man pcfs 2>&1 | grep -q 'processes and threads as files'"
# the installed binary, no PCFS_WORKER: it must find its own worker
PCFS=$p/bin/pcfs
unset PCFS_WORKER
pcfs_mount
expect_match "the installed pcfs logs its libexec worker" "$(cat "$M/log")" "worker $p/libexec/pcfs-worker"
echo 'cpu ops=10' > "$M/spawn"
expect "a built-in workload runs in the installed worker" "$(cat "$M/procs/1/wait")" "0"
check "unmount" pcfs_umount
finish
