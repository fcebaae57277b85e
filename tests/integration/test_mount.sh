#!/usr/bin/env bash
# The usual ways to mount pcfs, for real: `pcfs [SOURCE] MOUNTPOINT -o ...`
# (daemonized), `mount -t fuse.pcfs pcfs MNT -o config=FILE` and an fstab
# line, both through mount(8) and the mount.fuse3 helper; the log lines a
# foreground daemon writes to stderr at each [log] level, and those a
# daemonized one sends to syslog (received on a private /dev/log).
#
# mount(8) runs helpers without PATH, so mount.fuse3's `/bin/sh -c 'pcfs
# ...'` finds pcfs on sh's default path (/usr/local/sbin first) only.  Rather
# than install into the system, the test runs in a private mount namespace
# (unshare -m) with a directory holding `pcfs` bind-mounted over
# /usr/local/sbin: nothing outside the test sees it, and the mounts vanish
# with the namespace.
if [ -z "${PCFS_TEST_NS:-}" ]; then
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null ||
	   ! unshare -m true 2>/dev/null || ! command -v mount.fuse3 >/dev/null; then
		echo "SKIP: needs root, unshare -m and mount.fuse3"
		exit 77
	fi
	PCFS_TEST_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

PCFS_REAL=$(readlink -f "$PCFS")
cfg=$WORKDIR/mount.ini
printf '[fuse]\nauto_unmount = true\n[tasks]\nhistory = 7\n' > "$cfg"

# The pid of the daemon serving $1 (found by its executable and argv).
daemon_of() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$PCFS_REAL" ] || continue
		tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF " $1 " && { echo "${p#/proc/}"; return 0; }
	done
	return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }

# mounted_ok WHAT: the mount at $M is pcfs, serves files and read the config
mounted_ok() {
	expect "$1: fuse.pcfs in /proc/mounts" "$(findmnt -n -o FSTYPE,SOURCE "$M")" "fuse.pcfs pcfs"
	expect "$1: -o config=FILE was read" "$(sed -n 's/^history = //p' "$M/config")" "7"
	expect "$1: a task runs" "$(echo 'sh echo hi' > "$M/spawn" && cat "$M/procs/1/wait" "$M/procs/1/stdout" | tr '\n' ' ')" "0 hi "
}

# unmounted_ok WHAT CMD...: CMD unmounts, and the daemon then exits
unmounted_ok() {
	local what=$1 pid; shift
	pid=$(daemon_of "$M")
	check "$what" "$@"
	# (a hang-catcher: a sanitizer build's exit on a loaded machine is slow)
	check "$what: the daemon exits" wait_until 1000 gone "$pid"
	check_fails "$what: no longer mounted" is_mounted "$M"
}

echo "== pcfs SOURCE MOUNTPOINT -o config=FILE (daemonizes once mounted)"
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
check "pcfs returns once mounted" "$PCFS" pcfs "$M" -o "rw,config=$cfg,dev,suid,x-pcfs.note=1"
mounted_ok "pcfs SOURCE MNT"
expect "the daemon is detached (its parent is init or a subreaper)" \
	"$(awk '$1 == "PPid:" { print ($2 != '"$$"') }' "/proc/$(daemon_of "$M")/status")" "1"
unmounted_ok "fusermount3 -u" fusermount3 -u "$M"

echo "== mount -t fuse.pcfs (mount(8) -> mount.fuse3 -> pcfs pcfs MNT -o ...)"
mkdir -p "$WORKDIR/sbin"
ln -s "$PCFS_REAL" "$WORKDIR/sbin/pcfs"
check "a private /usr/local/sbin holding pcfs" mount --bind "$WORKDIR/sbin" /usr/local/sbin
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
check "mount -t fuse.pcfs pcfs MNT -o config=FILE" mount -t fuse.pcfs pcfs "$M" -o "config=$cfg"
mounted_ok "mount -t fuse.pcfs"
unmounted_ok "umount" umount "$M"

echo "== an fstab line (mount -T FSTAB MNT)"
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
printf '# an /etc/fstab line for pcfs\npcfs  %s  fuse.pcfs  config=%s,noauto,nofail,x-systemd.automount  0 0\n' \
	"$M" "$cfg" > "$WORKDIR/fstab"
check "mount -T FSTAB MNT" mount -T "$WORKDIR/fstab" "$M"
mounted_ok "fstab"
unmounted_ok "fusermount3 -u" fusermount3 -u "$M"

echo "== options and arguments"
M=$(mktemp -d "$WORKDIR/mnt.XXXX")
check_fails "three arguments are refused" "$PCFS" a b "$M"
expect_match "an unknown -o option is libfuse's to refuse" "$("$PCFS" -f -o no_such_opt "$M" 2>&1)" 'unknown option'
expect_match "-o config= names a file that must exist" "$("$PCFS" -f -o config=/nonexistent "$M" 2>&1)" '/nonexistent'

echo "== logging in the foreground: stderr, filtered by [log] level"
pcfs_mount $'[log]\nlevel = debug'
echo noop > "$M/spawn"; cat "$M/procs/1/wait" >/dev/null
check "unmount" pcfs_umount
expect_match "level = debug: the mount line (info)" "$(cat "$WORKDIR/pcfs.stderr")" 'pcfs: info: pcfs [0-9.]+ mounted on '
expect_match "level = debug: task events (debug)" "$(cat "$WORKDIR/pcfs.stderr")" 'pcfs: debug: task 1 '
pcfs_mount $'[log]\nlevel = warn'
echo noop > "$M/spawn"; cat "$M/procs/1/wait" >/dev/null
expect_match "level = warn: /log still has every event" "$(cat "$M/log")" ' info pcfs .* mounted on '
check "unmount" pcfs_umount
expect "level = warn: nothing below warn on stderr" "$(grep -cE 'pcfs: (info|debug):' "$WORKDIR/pcfs.stderr")" "0"

# Last, as it replaces /dev for the rest of this namespace: a /dev of our own
# (a tmpfs with the few device nodes pcfs needs) where socat listens on
# /dev/log, the socket syslog(3) writes to.  The host's /dev is not touched.
echo "== daemonized: log lines go to syslog"
syslog_test() {
	local n nodes=() dev
	for n in null zero full random urandom fuse; do
		dev=$(stat -c '%t %T' "/dev/$n" 2>/dev/null) || continue
		nodes+=("$n $((16#${dev% *})) $((16#${dev#* }))")
	done
	mount -t tmpfs -o mode=755 pcfs-test-dev /dev || return 1
	for n in "${nodes[@]}"; do set -- $n; mknod -m 666 "/dev/$1" c "$2" "$3" || return 1; done
	ln -s /proc/self/fd /dev/fd
	socat -u UNIX-RECV:/dev/log,mode=666 "OPEN:$WORKDIR/syslog,creat,append" &
	SOCAT_PID=$!
	wait_until 100 test -S /dev/log
}
if ! command -v socat >/dev/null; then
	echo "SKIP syslog: needs socat"
elif ! syslog_test; then
	echo "SKIP syslog: cannot make a private /dev here"
else
	printf '[fuse]\nauto_unmount = true\n[log]\nlevel = debug\n' > "$WORKDIR/debug.ini"
	M=$(mktemp -d "$WORKDIR/mnt.XXXX")
	check "pcfs daemonizes" "$PCFS" pcfs "$M" -o "config=$WORKDIR/debug.ini"
	echo noop > "$M/spawn"; cat "$M/procs/1/wait" >/dev/null
	pid=$(daemon_of "$M")
	fusermount3 -u "$M"; wait_until 1000 gone "$pid"
	# socat is stopped once it has written what is checked, not after 0.2 s
	wait_until 400 grep -qa "debug: task 1 " "$WORKDIR/syslog"
	kill "$SOCAT_PID" 2>/dev/null
	log=$(tr -d '\0' < "$WORKDIR/syslog")
	expect_match "syslog: the mount line, tagged pcfs[PID], info priority (<30>: daemon.info)" \
		"$log" "<30>[^<]*pcfs\[$pid\]: info: pcfs [0-9.]+ mounted on $M"
	expect_match "syslog: level = debug lets task events through (<31>: daemon.debug)" \
		"$log" "<31>[^<]*pcfs\[$pid\]: debug: task 1 "
fi

finish
