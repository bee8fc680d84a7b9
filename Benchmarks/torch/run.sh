#!/bin/sh
# ShuffleNetV2 0.5x training step (batch 16, 320x320, 2 threads): EdgeNAS (Swift, release) vs PyTorch.
# Runs the two alternately ROUNDS times (default 2) so both see the same machine load, then prints
# the ratio of the medians (EdgeNAS / PyTorch; below 1 means EdgeNAS is faster).
#
# Usage (from the repository root): Benchmarks/torch/run.sh [extra options, e.g. --steps 5]
set -eu
ROUNDS=${ROUNDS:-2}
# libgomp reads OMP_WAIT_POLICY at load time, so it must be in the environment (see Sources/Torch/Torch.swift).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
swift build -c release --product edgenas-bench-torch >/dev/null
BIN=$(swift build -c release --product edgenas-bench-torch --show-bin-path)/edgenas-bench-torch
swift_ms=""; python_ms=""
for round in $(seq "$ROUNDS"); do
    p=$(/usr/bin/python3 Benchmarks/torch/bench_torch.py "$@" | tail -1 | sed 's/.*median_ms=//')
    s=$("$BIN" "$@" | tail -1 | sed 's/.*median_ms=//')
    echo "round $round: edgenas ${s} ms, pytorch ${p} ms"
    swift_ms="$swift_ms $s"; python_ms="$python_ms $p"
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(median $swift_ms); p=$(median $python_ms)
echo "edgenas median ${s} ms/step, pytorch median ${p} ms/step, ratio $(echo "$s $p" | awk '{printf "%.3f", $1/$2}')"
