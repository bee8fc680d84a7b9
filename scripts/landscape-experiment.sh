#!/usr/bin/env bash
# The seed's experiment for a landscape camera (docs/experiments.md, "Non-square inputs"): a
# supernet of the head space trained from FastestDet's COCO network, then `edgenas search` over the
# head space with the input's height searched beside its width, scored on coco128-person's
# validation images that are at least as wide as high (51 of 73). The base model is the square
# FastestDet network.
#
#   scripts/landscape-experiment.sh [OUTPUT_DIR]               (default: runs/landscape)
#   SEARCH_HEIGHT=0 scripts/landscape-experiment.sh runs/square  (the same without the height)
#   SEARCH_HEIGHT=0 BASE_MODEL=k5-g1-c96-w320-h240 scripts/landscape-experiment.sh runs/landscape-base
#       (a landscape base model: the supernet trains at its aspect ratio, the width keeps it)
#   BASE_MODEL=k5-g1-c96-w320-h240 scripts/landscape-experiment.sh runs/landscape-base-h
#       (the same base with the height searched: heights 176..304, which run at 192..320)
#
# Needs ../shared (data and weights) and a release build (swift build -c release).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
edgenas=${EDGENAS:-"$root/.build/release/edgenas"}
output=$(mkdir -p "${1:-runs/landscape}" && cd "${1:-runs/landscape}" && pwd)
weights="$shared/weights/fastestdet-coco"
data="$shared/data/coco128-person"
classes=$(sed -e '/^$/d' -e 's/.*/"&"/' "$weights/coco.names" | paste -sd, -)
cd "$output"

# The dataset with one more split, val-landscape: the val images at least as wide as high.
mkdir -p data/ImageSets/Main
ln -sfn "$data/Annotations" data/Annotations
ln -sfn "$data/JPEGImages" data/JPEGImages
cp "$data"/ImageSets/Main/*.txt data/ImageSets/Main/
while read -r id; do
    [ -n "$id" ] || continue
    width=$(sed -n 's:.*<width>\([0-9]*\)</width>.*:\1:p' "$data/Annotations/$id.xml" | head -1)
    height=$(sed -n 's:.*<height>\([0-9]*\)</height>.*:\1:p' "$data/Annotations/$id.xml" | head -1)
    if [ "$width" -ge "$height" ]; then echo "$id"; fi
done < "$data/ImageSets/Main/val.txt" > data/ImageSets/Main/val-landscape.txt
echo "val-landscape: $(wc -l < data/ImageSets/Main/val-landscape.txt) images"

{
    echo "parameters:"
    echo "  kernel: {type: categorical, choices: [3, 5]}"
    echo "  groups: {type: categorical, choices: [1, 2, 4, 8]}"
    echo "  channels: {type: int, low: 24, high: 96, step: 8}"
    echo "  width: {type: int, low: 224, high: 320, step: 32}"
    if [ "${SEARCH_HEIGHT:-1}" != 0 ]; then
        # The grid runs through the base model's height (a square base: its width, 320), so the
        # base is a member of the space; every height still rounds to a distinct 32-pixel stride.
        base_height=$(echo "${BASE_MODEL:-k5-g1-c96-w320}" | sed -n 's/.*-h\([0-9]*\).*/\1/p')
        base_height=${base_height:-320}
        low=$((base_height - (base_height - 160) / 32 * 32))
        high=$((low + (320 - low) / 32 * 32))
        echo "  height: {type: int, low: $low, high: $high, step: 32}"
    fi
} > space.yaml

cat > search.yaml <<YAML
name: landscape
dataset:
  format: voc
  path: $output/data
  val: val-landscape
  classes: [$classes]
base_model: ${BASE_MODEL:-k5-g1-c96-w320}
search_space: space.yaml
objectives: [ap50, latency]
budget: {trials: 50}
estimator: select
selection: {references: 20, max_cost_fraction: 0.25}
latency: {backend: int8, threads: 1}
storage: sqlite://landscape.db
seed: 0
training:
  init: $output/supernet
  epochs: 6
  short_epochs: 1
  learning_rate: 0.00005
  threads: 2
retrain: {candidates: 5}
output: report
YAML

started=$SECONDS
"$edgenas" train --data data --val-split val-landscape --classes "$(paste -sd, "$weights/coco.names")" \
    --init "$weights/fastestdet-coco-ap05-0.253.pth" --arch "${BASE_MODEL:-k5-g1-c96-w320}" --supernet --search-space space.yaml \
    --epochs 30 --learning-rate 0.0003 --threads 2 --output supernet
echo "supernet: $((SECONDS - started)) s wall"
"$edgenas" search --config search.yaml
echo "search: $((SECONDS - started)) s wall"
