#!/bin/sh
# Single-thread batch-1 latency, FP32 and INT8, of the baseline (k5-g1-c96-w320) and the smallest
# head (k3-g8-c24-w224) through each EdgeNAS backend against its peer, in the same run:
#   libtorch backends (TorchFP32Backend, TorchInt8Backend) vs python3-torch 1.13 (eager FP32,
#     FX-quantized INT8) on the same quantized engine;
#   onnxruntime backend (ONNXRuntimeBackend) vs onnxruntime run from Python on the same .onnx file.
# The sides alternate ROUNDS times (default 3) so all see the same machine load; the script prints
# each round and the ratio EdgeNAS / peer of the median-of-rounds medians (below 1: EdgeNAS is
# faster). RANK=N (default 0) also times N head-space architectures through every backend and
# prints the Kendall tau of each backend's latencies against onnxruntime's.
#
# Usage (from the repository root): Benchmarks/hardware/run.sh [ENGINE] [THREADS]
#   ENGINE: onednn (default) or qnnpack; THREADS: 1 (default)
# Needs python3-torch (Debian's /usr/bin/python3) and onnxruntime in the repository's .venv
# (scripts/install.sh --deps; EDGENAS_PYTHON names another Python with onnxruntime).
set -eu
ENGINE=${1:-onednn}
THREADS=${2:-1}
ROUNDS=${ROUNDS:-3}
RANK=${RANK:-0}
ARCHS=${ARCHS:-"k5-g1-c96-w320 k3-g8-c24-w224"}
# libgomp reads OMP_WAIT_POLICY at load time (see Sources/Torch/Torch.swift).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
swift build -c release --product edgenas-bench-hardware >/dev/null
BIN=$(swift build -c release --product edgenas-bench-hardware --show-bin-path)/edgenas-bench-hardware
here=$(dirname "$0")
ort_python="${EDGENAS_PYTHON:-$("$here/../../scripts/python-env.sh")}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
field() { echo "$2" | sed "s/.* $1=\([0-9.]*\).*/\1/"; }
for arch in $ARCHS; do
    "$BIN" graph "$arch" >"$work/$arch.json"
    "$BIN" onnx "$arch" "$work"
done
for round in $(seq "$ROUNDS"); do
    for arch in $ARCHS; do
        /usr/bin/python3 "$here/bench_torch_peer.py" "$work/$arch.json" --engine "$ENGINE" --threads "$THREADS" \
            | sed 's/^/pytorch /' | tee -a "$work/results"
        "$BIN" measure "$arch" "$ENGINE" "$THREADS" | sed 's/^/edgenas /' | tee -a "$work/results"
        for precision in fp32 int8; do
            "$ort_python" "$here/bench_onnxruntime_peer.py" "$work/$arch-$precision.onnx" "$arch" "$precision" --threads "$THREADS" \
                | sed 's/^/ortpython /' | tee -a "$work/results"
            "$BIN" measure-onnx "$work/$arch-$precision.onnx" "$arch" "$precision" "$THREADS" | sed 's/^/ortedgenas /' | tee -a "$work/results"
        done
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pick() { grep "^$1 name=$2 precision=$3 " "$work/results" | while read -r line; do field median_ms "$line"; done | median; }
echo "median over $ROUNDS rounds (ms), engine $ENGINE, $THREADS thread(s):"
for arch in $ARCHS; do
    for precision in fp32 int8; do
        e=$(pick edgenas "$arch" "$precision"); p=$(pick pytorch "$arch" "$precision")
        echo "$arch $precision libtorch: edgenas $e ms, python3-torch $p ms, ratio $(echo "$e $p" | awk '{printf "%.3f", $1/$2}')"
        e=$(pick ortedgenas "$arch" "$precision"); p=$(pick ortpython "$arch" "$precision")
        echo "$arch $precision onnxruntime: edgenas $e ms, python $p ms, ratio $(echo "$e $p" | awk '{printf "%.3f", $1/$2}')"
    done
done
if [ "$RANK" -gt 0 ]; then
    "$BIN" rank "$RANK" 1 "$ENGINE"
fi
