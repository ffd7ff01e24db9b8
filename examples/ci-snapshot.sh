#!/usr/bin/env bash
# A CI job that warms up an expensive environment once, snapshots it into an
# archive (what a CI cache would keep), and restores it, timing both.
# Usage: examples/ci-snapshot.sh [RCKPT] [WARM-SECONDS]   (as root)
set -euo pipefail
RCKPT=${1:-rckpt}
WARM=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "failed: $*" >&2; cat "$work"/*.err >&2; exit 1; }
now() { date +%s.%N; }

# 1. Warm up, in namespaces of its own so that restores never collide.
t0=$(now)
"$RCKPT" run -- python3 "$here/warm.py" "$WARM" > "$work/out" 2> "$work/run.err" &
run=$!
until grep -q '^READY' "$work/out" 2>/dev/null; do sleep 0.1; done
t1=$(now)
init=$(cat /proc/$run/task/$run/children | awk '{print $1}')
grep '^WARM' "$work/out"

# 2. Snapshot it into one compressed, checksummed file.
"$RCKPT" dump -t "$init" --archive "$work/env.rckpt" 2>&1 | grep -v '^rckpt: external' || true
wait "$run" || true
t2=$(now)
echo "archive: $(du -h "$work/env.rckpt" | cut -f1)"

# 3. A later job: restore it and use it. Its stdout was a file: it writes there
# again, after what it wrote before.
t3=$(now)
"$RCKPT" restore -v --archive "$work/env.rckpt" --detach 2> "$work/restore.err" || fail restore
t4=$(now)
pid=$(sed -n 's/^rckpt: restored \([0-9]*\).*/\1/p' "$work/restore.err")
kill -USR2 "$pid"
for _ in $(seq 100); do grep -q ANSWER "$work/out" && break; sleep 0.05; done
kill -9 "$pid"
grep ANSWER "$work/out"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" 'BEGIN {
    printf "warm-up %.2f s, dump to archive %.2f s, restore from archive %.2f s (%.1f%% of the warm-up)\n", b-a, c-b, e-d, 100*(e-d)/(b-a) }'
