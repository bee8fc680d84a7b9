#!/bin/bash
# Supernet training speed of two builds of edgenas, measured alternately on the same machine in
# one run: the wall time of one supernet epoch (`edgenas train --supernet`), its user and system
# CPU seconds and peak memory, and the loss and AP@0.5 it ends at, so a change of the training
# step is seen to keep its results.
#
# Usage (from the repository root):
#   Benchmarks/supernet/run.sh BEFORE AFTER DATA INIT [ROUNDS] [OUTPUT]
# BEFORE, AFTER: edgenas binaries, e.g. a release build of the commit before a change
#   (git worktree add /tmp/before REV~1 && cd /tmp/before && swift build -c release --product edgenas)
#   and of the change itself.
# Needs /usr/bin/time (Debian package `time`).
# DATA: a VOC dataset (e.g. the demo's data/); INIT: the network the supernet starts from (e.g.
#   the demo's base-model/). ROUNDS default 2, OUTPUT default runs/supernet-speed.
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); DATA=$(realpath "$3"); INIT=$(realpath "$4")
ROUNDS=${5:-2}
OUT=$(mkdir -p "${6:-runs/supernet-speed}" && cd "${6:-runs/supernet-speed}" && pwd)
cd "$OUT"
echo "build,round,seconds,user_s,system_s,max_rss_kb,final_line" > results.csv
for round in $(seq 1 "$ROUNDS"); do
    for build in before after; do
        binary=$BEFORE; [ "$build" = after ] && binary=$AFTER
        rm -rf "checkpoint-$build-$round"
        start=$(date +%s.%N)
        /usr/bin/time -f "%U,%S,%M" -o "cpu-$build-$round.txt" "$binary" train --supernet --init "$INIT" --data "$DATA" --arch k5-g1-c96-w320 --epochs 1 --learning-rate 0.001 \
            --threads 2 --seed 0 --output "checkpoint-$build-$round" >"log-$build-$round.txt" 2>&1
        seconds=$(echo "$(date +%s.%N) - $start" | bc)
        result=$(grep -E 'loss|AP@0.5' "log-$build-$round.txt" | tail -2 | tr '\n' ' ' | tr -s ' ' | tr ',' ';')
        echo "$build,$round,$seconds,$(tail -1 "cpu-$build-$round.txt"),$result" | tee -a results.csv
    done
done
