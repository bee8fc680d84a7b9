#!/usr/bin/env bash
# Inheritance quality on real images (docs/experiments.md): 20 random architectures of the default
# head space and 20 of the space `suggest-space` opens from the baseline's INT8 profile, each
# inheriting FastestDet's published COCO weights, scored with no training (batch norms
# recalibrated) and after 1, 2, 3 and 5 fine-tuning epochs, against a long fine-tune of 15 epochs;
# Kendall tau per budget and the share of parameters inherited, in inheritance.md.
#
#   scripts/inheritance-experiment.sh [OUTPUT_DIR]      (default: runs/inheritance-experiment)
#
# Needs ../shared (data and weights) and a release build (swift build -c release). As in
# scripts/seed-experiment.sh, the networks keep COCO's 80 classes (AP@0.5 is the person class's).
# The long fine-tune runs at AdamW 0.00003, the rate that loses least on these images over 10
# epochs (docs/experiments.md, "Fine-tuning the baseline"). The two spaces train side by side, one
# thread each.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
edgenas=${EDGENAS:-"$root/.build/release/edgenas"}
python=${EDGENAS_PYTHON:-$("$root/scripts/python-env.sh")}
output=$(mkdir -p "${1:-runs/inheritance-experiment}" && cd "${1:-runs/inheritance-experiment}" && pwd)
weights="$shared/weights/fastestdet-coco"
data="$shared/data/coco128-person"
classes=$(sed -e '/^$/d' "$weights/coco.names" | paste -sd, -)
epochs=15 rate=0.00003

cd "$output"
started=$SECONDS
"$edgenas" select-estimator --data "$data" --classes "$classes" --init "$weights/fastestdet-coco-ap05-0.253.pth" \
    --k 20 --epochs $epochs --budgets 1,2,3,5 --learning-rate $rate --threads 1 --seed 0 --output head > head.log 2>&1 &
head_job=$!

# The suggested space has no select-estimator options of its own: a one-trial search with
# `estimator: select` runs the same selection over it.
"$edgenas" profile --arch k5-g1-c96-w320-n80 --int8 --output profile > suggested.log 2>&1
"$edgenas" suggest-space --profile profile/profile.json --output suggested-space.yaml >> suggested.log 2>&1
quoted=$(sed -e '/^$/d' -e 's/.*/"&"/' "$weights/coco.names" | paste -sd, -)
cat > suggested.yaml <<EOF
name: inheritance-suggested
dataset: {format: voc, path: $data, classes: [$quoted]}
base_model: k5-g1-c96-w320
search_space: suggested-space.yaml
objectives: [ap50, latency]
budget: {trials: 1}
estimator: select
selection: {references: 20, max_cost_fraction: 0.25}
latency: {backend: int8, threads: 1}
storage: sqlite://suggested.db
seed: 0
training: {init: $weights/fastestdet-coco-ap05-0.253.pth, epochs: $epochs, short_epochs: 1, learning_rate: $rate, threads: 1}
retrain: {candidates: 1}
output: report-suggested
EOF
"$edgenas" search --config suggested.yaml >> suggested.log 2>&1
wait "$head_job"
echo "both spaces: $((SECONDS - started)) s wall" | tee wall-time.txt

"$python" "$root/scripts/reference/inheritance_table.py" --budgets 1,2,3,5 \
    head="$output/head" suggested="$output/report-suggested/selection" > inheritance.md
cat inheritance.md
