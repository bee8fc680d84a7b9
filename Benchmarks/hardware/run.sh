#!/bin/sh
# Single-thread batch-1 latency, FP32 and INT8, of the baseline (k5-g1-c96-w320) and the smallest
# head (k3-g8-c24-w224): EdgeNAS's libtorch backends (TorchFP32Backend, TorchInt8Backend) vs
# python3-torch 1.13 (eager FP32, FX-quantized INT8) on the same quantized engine, in the same run.
# The two sides alternate ROUNDS times (default 3) so both see the same machine load; the script
# prints each round and the ratio EdgeNAS / PyTorch of the median-of-rounds medians (below 1:
# EdgeNAS is faster).
#
# Usage (from the repository root): Benchmarks/hardware/run.sh [ENGINE] [THREADS]
#   ENGINE: onednn (default) or qnnpack; THREADS: 1 (default)
set -eu
ENGINE=${1:-onednn}
THREADS=${2:-1}
ROUNDS=${ROUNDS:-3}
ARCHS=${ARCHS:-"k5-g1-c96-w320 k3-g8-c24-w224"}
# libgomp reads OMP_WAIT_POLICY at load time (see Sources/Torch/Torch.swift).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
swift build -c release --product edgenas-bench-hardware >/dev/null
BIN=$(swift build -c release --product edgenas-bench-hardware --show-bin-path)/edgenas-bench-hardware
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
field() { echo "$2" | sed "s/.* $1=\([0-9.]*\).*/\1/"; }
for arch in $ARCHS; do
    "$BIN" graph "$arch" >"$work/$arch.json"
done
for round in $(seq "$ROUNDS"); do
    for arch in $ARCHS; do
        /usr/bin/python3 Benchmarks/hardware/bench_torch_peer.py "$work/$arch.json" --engine "$ENGINE" --threads "$THREADS" \
            | sed 's/^/pytorch /' | tee -a "$work/results"
        "$BIN" measure "$arch" "$ENGINE" "$THREADS" | sed 's/^/edgenas /' | tee -a "$work/results"
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median over $ROUNDS rounds (ms), engine $ENGINE, $THREADS thread(s):"
for arch in $ARCHS; do
    for precision in fp32 int8; do
        e=$(grep "^edgenas name=$arch precision=$precision " "$work/results" | while read -r line; do field median_ms "$line"; done | median)
        p=$(grep "^pytorch name=$arch precision=$precision " "$work/results" | while read -r line; do field median_ms "$line"; done | median)
        echo "$arch $precision: edgenas $e ms, pytorch $p ms, ratio $(echo "$e $p" | awk '{printf "%.3f", $1/$2}')"
    done
done
