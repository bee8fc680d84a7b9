#!/usr/bin/env bash
# The seed's experiment on real images (docs/experiments.md): two searches on coco128-person, every
# network inheriting FastestDet's published COCO weights, one over the default head space and one
# over the space `suggest-space` builds from the baseline's INT8 profile.
#
#   scripts/seed-experiment.sh [OUTPUT_DIR]      (default: runs/seed-experiment)
#   SUPERNET_EPOCHS=30 scripts/seed-experiment.sh runs/seed-supernet
#
# With SUPERNET_EPOCHS, the published network is first trained as a supernet of each space
# (`edgenas train --supernet`, distilling from itself) and the search inherits from that instead.
#
# Needs ../shared (data and weights) and a release build (swift build -c release). The networks keep
# COCO's 80 classes, so the class softmax still tells a person from a dog; only person is annotated
# in the data, so AP@0.5 is the person class's. Fine-tuning: 6 epochs at AdamW 0.00005, the schedule
# that keeps the baseline's AP on these images (docs/experiments.md, "Fine-tuning the baseline").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
edgenas=${EDGENAS:-"$root/.build/release/edgenas"}
output=$(mkdir -p "${1:-runs/seed-experiment}" && cd "${1:-runs/seed-experiment}" && pwd)
weights="$shared/weights/fastestdet-coco"
classes=$(sed -e '/^$/d' -e 's/.*/"&"/' "$weights/coco.names" | paste -sd, -)

cd "$output"
"$edgenas" profile --arch k5-g1-c96-w320-n80 --int8 --output profile
"$edgenas" suggest-space --profile profile/profile.json --output suggested-space.yaml

for space in head suggested; do
    [ "$space" = head ] && searched=default || searched=suggested-space.yaml
    cat > "$space.yaml" <<EOF
name: seed-$space
dataset:
  format: voc
  path: $shared/data/coco128-person
  classes: [$classes]
base_model: k5-g1-c96-w320
search_space: $searched
objectives: [ap50, latency]
budget: {trials: 50}
estimator: select
selection: {references: 20, max_cost_fraction: 0.25}
latency: {backend: int8, threads: 1}
storage: sqlite://$space.db
seed: 0
training:
  init: $weights/fastestdet-coco-ap05-0.253.pth
  epochs: 6
  short_epochs: 1
  learning_rate: 0.00005
  threads: 2
retrain: {candidates: 5}
output: report-$space
EOF
    started=$SECONDS
    if [ -n "${SUPERNET_EPOCHS:-}" ]; then
        [ "$space" = head ] && space_option=() || space_option=(--search-space suggested-space.yaml)
        "$edgenas" train --data "$shared/data/coco128-person" --classes "$(paste -sd, "$weights/coco.names")" \
            --init "$weights/fastestdet-coco-ap05-0.253.pth" --supernet "${space_option[@]}" \
            --epochs "$SUPERNET_EPOCHS" --learning-rate "${SUPERNET_LEARNING_RATE:-0.0003}" --threads 2 --output "supernet-$space"
        sed -i "s|init: .*|init: $output/supernet-$space|" "$space.yaml"
        echo "$space supernet: $((SECONDS - started)) s wall"
    fi
    "$edgenas" search --config "$space.yaml"
    echo "$space search: $((SECONDS - started)) s wall"
done
