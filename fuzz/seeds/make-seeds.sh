#!/bin/bash
# Rewrites the seed corpus (fuzz/corpus/) from real images: runs the test
# workloads (tests/workloads/*.c) and fdkinds.c here, dumps each with rckpt, and
# hands the image directories to `rckpt-fuzz --gen-corpus`, which adds the
# builders' image of images/tests/common and keeps only images that read back
# as valid. Needs root (ptrace) and cc. Run it from anywhere:
#
#   cargo build && fuzz/seeds/make-seeds.sh [path/to/rckpt]
#
# The corpus must be rewritten whenever the format changes (a seed of another
# format is refused by the decoder and stops being a useful seed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rckpt=${1:-$root/target/debug/rckpt}
[ -x "$rckpt" ] || { echo "no rckpt binary at $rckpt (cargo build first)" >&2; exit 2; }
work=$(mktemp -d /tmp/rckpt-seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/images" "$work/data"

build() { # NAME SOURCE
	cc -O1 -g -w -o "$work/bin/$1" "$2" -lrt -lpthread
}

# dump NAME BINARY [ARGS...]: start it, wait for "READY <pid>", dump that pid.
# (events and ipc hold shared memory, memfds, deleted files, pipes, sockets and
# locks of parents and children; fdkinds.c each kind on its own.)
dump() {
	local name=$1 bin=$2
	shift 2
	[ -x "$work/bin/$bin" ] || return 0
	rm -rf "$work/data/$name" && mkdir -p "$work/data/$name"
	coproc WL { exec "$work/bin/$bin" "$@" 2>/dev/null </dev/null; }
	local wl=$WL_PID pid= line
	while read -t 20 -r line <&"${WL[0]}"; do
		case "$line" in READY*) pid=${line#READY }; break ;; esac
	done
	if [ -n "$pid" ] && "$rckpt" dump -t "$pid" -D "$work/images/$name" $DUMP_ARGS >"$work/$name.log" 2>&1; then
		echo "dumped $name"
	else
		echo "no image of $name: $(tail -1 "$work/$name.log" 2>/dev/null)"
		rm -rf "$work/images/$name"
	fi
	kill -9 "$wl"
	wait "$wl"
}

# Each in a subshell whose stderr (bash's note of the killed workload) is
# dropped: rckpt's own messages are in the logs.
run() {
	(dump "$@") 2>/dev/null
}

for w in blocking signals regs taskstate zombies threads leaderless cowfork tree files events ipc; do
	[ -f "$root/tests/workloads/$w.c" ] && build "$w" "$root/tests/workloads/$w.c"
done
build fdkinds "$here/fdkinds.c"

DUMP_ARGS=
run blocking blocking pause running
run signals signals
run regs regs
run taskstate taskstate
run zombies zombies
run threads threads 8
run leaderless leaderless
run cowfork cowfork 64 4
run tree tree
run files files "$work/data/files"
DUMP_ARGS=--file-locks
run events events "$work/data/events"
run ipc ipc "$work/data/ipc"
for k in pipe,fifo eventfd,epoll,signalfd,timerfd inotify memfd,deleted lock unix inet all; do
	set=$k
	[ "$k" = all ] && set=pipe,fifo,eventfd,epoll,signalfd,timerfd,inotify,memfd,deleted,lock,unix,inet
	run "fd-${k//,/-}" fdkinds "$work/data/fd-${k//,/-}" "$set"
done

rm -rf "$root/fuzz/corpus"
cargo run --release --quiet --manifest-path "$root/fuzz/Cargo.toml" -- --gen-corpus "$work"/images/*
