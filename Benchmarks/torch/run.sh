#!/bin/sh
# ShuffleNetV2 0.5x training step (batch 16, 320x320, 2 threads): EdgeNAS (Swift, release) vs PyTorch.
# Runs the two alternately ROUNDS times (default 3) so both see the same machine load, then prints
# the ratios (EdgeNAS / PyTorch; below 1 means EdgeNAS is faster) of the median step times:
# process CPU time (all threads; steadier on a shared machine) and wall time.
#
# Usage (from the repository root): Benchmarks/torch/run.sh [--model backbone|detector --batch 16 --size 320 --threads 2 --warmup 2 --steps 5]
# PEER_CHANNELS_LAST=1 runs the PyTorch peer channels-last too (EdgeNAS trains the detector so;
# by default the peer runs PyTorch's default NCHW layout, as a user's script would).
set -eu
ROUNDS=${ROUNDS:-3}
# libgomp reads OMP_WAIT_POLICY at load time, so it must be in the environment (see Sources/Torch/Torch.swift).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
swift build -c release --product edgenas-bench-torch >/dev/null
BIN=$(swift build -c release --product edgenas-bench-torch --show-bin-path)/edgenas-bench-torch
results=$(mktemp)
trap 'rm -f "$results"' EXIT
field() { echo "$2" | sed "s/.* $1=\([0-9.]*\).*/\1/"; }
for round in $(seq "$ROUNDS"); do
    p=$(/usr/bin/python3 Benchmarks/torch/bench_torch.py ${PEER_CHANNELS_LAST:+--channels-last} "$@" | tail -1)
    s=$("$BIN" "$@" | tail -1)
    echo "round $round: edgenas cpu $(field median_cpu_ms "$s") ms wall $(field median_ms "$s") ms;" \
         "pytorch cpu $(field median_cpu_ms "$p") ms wall $(field median_ms "$p") ms"
    echo "$(field median_cpu_ms "$s") $(field median_ms "$s") $(field median_cpu_ms "$p") $(field median_ms "$p")" >>"$results"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sc=$(cut -d' ' -f1 "$results" | median); sw=$(cut -d' ' -f2 "$results" | median)
pc=$(cut -d' ' -f3 "$results" | median); pw=$(cut -d' ' -f4 "$results" | median)
echo "median per step: edgenas cpu ${sc} ms wall ${sw} ms; pytorch cpu ${pc} ms wall ${pw} ms"
echo "ratio edgenas/pytorch: cpu $(echo "$sc $pc" | awk '{printf "%.3f", $1/$2}') wall $(echo "$sw $pw" | awk '{printf "%.3f", $1/$2}')"
