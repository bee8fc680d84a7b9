#!/bin/bash
# The same detector search with and without pruning, on real images (issue #18): training time
# spent, trials pruned, and the hypervolume of each front (AP@0.5 against latency).
#
# Usage (from the repository root):
#   Benchmarks/pruning/run.sh INIT [TRIALS] [OUTPUT]   (TRIALS default 40, OUTPUT runs/pruning)
# INIT: pretrained weights every trial fine-tunes from (FastestDet's COCO checkpoint, or a supernet
# trained with `edgenas train --supernet`). PRUNER (default median) and EPOCHS (default 6) override.
#
# Both searches use estimator `full` (EPOCHS epochs of fine-tuning, so the front needs no
# retraining) and a latency predictor fitted once at the start: latency on this VM moves between
# process-level regimes (docs/experiments.md), and the two fronts must see one latency per network.
# Needs ../shared (coco128-person, FastestDet's class names) and /usr/bin/python3.
set -euo pipefail
INIT=$(realpath "$1")
TRIALS=${2:-40}
OUT=$(mkdir -p "${3:-runs/pruning}" && cd "${3:-runs/pruning}" && pwd)
PRUNER=${PRUNER:-median}
EPOCHS=${EPOCHS:-6}
ROOT=$(pwd)
SHARED=$(cd ../shared && pwd)
swift build -c release --product edgenas >/dev/null
BIN=$(swift build -c release --product edgenas --show-bin-path)/edgenas
classes=$(sed -e '/^$/d' -e 's/.*/"&"/' "$SHARED/weights/fastestdet-coco/coco.names" | paste -sd, -)

cd "$OUT"
[ -f latency.json ] || "$BIN" latency fit-predictor --latency int8 --count 60 --held-out 20 --output latency.json
for pruner in none "$PRUNER"; do
    cat >"$pruner.yaml" <<YAML
name: pruning-$pruner
dataset: {format: voc, path: $SHARED/data/coco128-person, classes: [$classes]}
base_model: k5-g1-c96-w320
objectives: [ap50, latency]
budget: {trials: $TRIALS}
estimator: full
pruner: $pruner
latency: {backend: predictor $OUT/latency.json}
storage: sqlite://$pruner.db
seed: 0
training: {init: $INIT, epochs: $EPOCHS, learning_rate: 0.00005, threads: 2}
output: report-$pruner
YAML
    started=$SECONDS
    "$BIN" search --config "$pruner.yaml" >"$pruner.log" 2>&1
    echo "pruner=$pruner wall_s=$((SECONDS - started))"
done
/usr/bin/python3 "$ROOT/Benchmarks/pruning/compare.py" none.db "$PRUNER.db"
