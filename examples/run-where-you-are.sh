#!/usr/bin/env bash
# run-where-you-are.sh MOUNTPOINT - work runs where its writer stands: a
# project's own scripts started by a relative path, the writer's environment
# and PATH, env= edits, files as stdin and stdout, and a pool mapping a
# project's command over inputs, as pueue, xargs or subprocess would.
set -euo pipefail
M=${1:-${PCFS_MOUNT:?usage: run-where-you-are.sh MOUNTPOINT}}

# a small project in a directory of its own
PROJ=$(mktemp -d "${TMPDIR:-/tmp}/pcfs-proj.XXXXXX")
trap 'rm -rf "$PROJ"' EXIT
mkdir -p "$PROJ/bin" "$PROJ/data"
cat > "$PROJ/build.sh" <<'EOF'
#!/bin/sh
echo "building $PROJECT in $(pwd)"
EOF
cat > "$PROJ/bin/square" <<'EOF'
#!/bin/sh
echo $(( $1 * $1 ))
EOF
chmod +x "$PROJ/build.sh" "$PROJ/bin/square"
seq 5 > "$PROJ/data/numbers"

# run LINE: write one line from the project's directory, with PROJECT and
# the project's bin/ on PATH in the writer's environment; print its stdout
run() {
	local id
	id=$(cd "$PROJ" && PROJECT=demo PATH="$PROJ/bin:$PATH" bash -c \
		'exec 3<>"$1/spawn"; printf "%s\n" "$2" >&3; read -r id <&3; echo "$id"' _ "$M" "$1")
	cat "$M/procs/$id/wait" >/dev/null
	echo "\$ $1"
	sed 's/^/    /' "$M/procs/$id/stdout"
}

echo "The writer stands in $PROJ with PROJECT=demo and bin/ on its PATH."
run 'exec ./build.sh'
run 'sh echo "PROJECT is $PROJECT"'
run 'exec square 12'
run 'sh env=PROJECT=other env=-HOME echo "PROJECT=$PROJECT HOME=${HOME-unset}"'
run 'sh cwd=data ls'
run 'sh stdin=./data/numbers stdout=./data/sum awk "{ s += \$1 } END { print s }"'
echo "data/sum (stdout=./data/sum): $(cat "$PROJ/data/sum")"

# a pool: each line a future, run where it was written
P=$M/pools/where
mkdir "$P"
echo workers=2 > "$P/ctl"
echo "map over data/numbers from the project, through a 2-worker pool:"
squares=$(cd "$PROJ" && PATH="$PROJ/bin:$PATH" bash -c \
	'exec 3<>"$1/map"; sed "s/^/exec square /" data/numbers >&3; cat <&3' _ "$P")
echo "    squares: $(echo "$squares" | tr '\n' ' ')"
echo shutdown > "$P/ctl"
