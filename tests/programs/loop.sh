#!/bin/bash
# A bash script in the middle of a loop: each round runs a subshell pipeline
# and an external command; every line depends on the round before it.
# $1: rounds; $2: seconds to sleep between rounds.
set -u
echo "READY $$"
acc=1
for ((i = 1; i <= $1; i++)); do
	acc=$(( (acc * 31 + i) % 1000003 ))
	line=$(echo "$acc" | (read -r x; echo "$x" | tr 0-9 a-j) | cat)
	echo "ROUND $i $acc $line"
	sleep "$2"
done
echo "DONE"
