#!/usr/bin/env python3
"""Reference numbers for the Swift COCO evaluator, computed by pycocotools' COCOeval.

Writes Tests/DetectionDataTests/Fixtures/coco_eval_crosscheck.json: several evaluation cases
(ground truth, detections) with the AP values that pycocotools reports. The Swift test
`COCOEvaluatorTests` reads the file and must reproduce every number within 1e-4, so the Swift
tests need no Python; rerun this script to regenerate the fixture after changing the cases.

    pip install pycocotools numpy
    python3 scripts/crosscheck_pycocotools.py            # writes the fixture
    python3 scripts/crosscheck_pycocotools.py --check    # recomputes and compares with it

Cases: random scenes, crowded images with many overlapping boxes (and more than 100 detections,
so maxDets truncation matters), images without ground truth or detections, detections on images
without ground truth, iscrowd regions, tied scores and duplicate boxes, and a category whose only
ground truth is a crowd region (pycocotools then reports -1 for it and leaves it out of the mean).
Boxes use integer pixel coordinates so that they are exact in both languages.
"""
import argparse
import contextlib
import io
import json
import os
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "Tests", "DetectionDataTests", "Fixtures",
                       "coco_eval_crosscheck.json")


def jitter_box(rng, box, amount, width, height):
    x, y, w, h = box
    dx, dy, dw, dh = rng.integers(-amount, amount + 1, size=4)
    nx = int(np.clip(x + dx, 0, width - 2))
    ny = int(np.clip(y + dy, 0, height - 2))
    nw = int(np.clip(w + dw, 1, width - nx))
    nh = int(np.clip(h + dh, 1, height - ny))
    return [nx, ny, nw, nh]


def random_box(rng, width, height, min_size=4, max_size=120):
    w = int(rng.integers(min_size, max_size))
    h = int(rng.integers(min_size, max_size))
    x = int(rng.integers(0, width - w))
    y = int(rng.integers(0, height - h))
    return [x, y, w, h]


def make_case(name, seed, images, categories, gt_per_image, dt_extra, jitter, crowd_rate=0.0,
              score_decimals=3, crowded=False, empty_images=0, dt_only_images=0, crowd_only_category=False, no_detections=False):
    rng = np.random.default_rng(seed)
    width, height = 320, 240
    case_images, gts, dts = [], [], []
    for image_id in range(1, images + 1):
        case_images.append({"id": image_id, "width": width, "height": height})
        no_gt = image_id <= empty_images + dt_only_images
        count = 0 if no_gt else int(rng.integers(gt_per_image[0], gt_per_image[1] + 1))
        image_gts = []
        for _ in range(count):
            if crowded:
                # Many boxes around one spot: heavy mutual overlap.
                base = [100, 60, 80, 100]
                box = jitter_box(rng, base, 25, width, height)
            else:
                box = random_box(rng, width, height)
            category = int(rng.integers(1, categories + 1))
            crowd = int(rng.random() < crowd_rate)
            image_gts.append((box, category, crowd))
        if crowd_only_category and image_id == images:
            image_gts.append(([10, 10, 200, 200], categories + 1, 1))
        for box, category, crowd in image_gts:
            gts.append({"id": len(gts) + 1, "image_id": image_id, "category_id": category, "bbox": box,
                        "area": box[2] * box[3], "iscrowd": crowd})
        if image_id <= empty_images or no_detections:
            continue  # no detections (and, for the first empty_images images, no ground truth)
        for box, category, crowd in image_gts:
            # Detections near each ground truth box (some duplicates), plus random false alarms.
            for _ in range(int(rng.integers(0, 3))):
                dts.append({"image_id": image_id, "category_id": category,
                            "bbox": jitter_box(rng, box, jitter, width, height),
                            "score": round(float(rng.random()), score_decimals)})
        for _ in range(int(rng.integers(dt_extra[0], dt_extra[1] + 1))):
            dts.append({"image_id": image_id, "category_id": int(rng.integers(1, categories + 1)),
                        "bbox": random_box(rng, width, height), "score": round(float(rng.random()), score_decimals)})
    category_list = [{"id": c, "name": f"class{c}"} for c in range(1, categories + 1 + int(crowd_only_category))]
    return {"name": name, "images": case_images, "categories": category_list, "annotations": gts, "detections": dts}


def evaluate(case):
    gt = {"images": case["images"], "categories": case["categories"], "annotations": case["annotations"]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if case["detections"]:
            coco_dt = coco_gt.loadRes([dict(d) for d in case["detections"]])
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": case["images"], "categories": case["categories"], "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    iou_thresholds = evaluator.params.iouThrs

    def mean_ap(t=None, k=None):
        p = precision[:, :, :, 0, 2]  # area "all", maxDets 100
        if t is not None:
            p = p[np.where(np.isclose(iou_thresholds, t))[0]]
        if k is not None:
            p = p[:, :, k:k + 1]
        valid = p[p > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    per_category = [mean_ap(k=k) for k in range(len(case["categories"]))]
    return {"ap": float(evaluator.stats[0]), "ap50": float(evaluator.stats[1]), "ap75": float(evaluator.stats[2]),
            "ap_check": mean_ap(), "ap50_check": mean_ap(t=0.5), "per_category_ap": per_category,
            "ar100": float(evaluator.stats[8])}


def cases():
    return [
        make_case("random", 1, images=20, categories=2, gt_per_image=(0, 8), dt_extra=(0, 4), jitter=6),
        make_case("accurate", 7, images=20, categories=1, gt_per_image=(1, 5), dt_extra=(0, 1), jitter=2),
        make_case("crowded", 2, images=5, categories=1, gt_per_image=(30, 45), dt_extra=(40, 60), jitter=8,
                  crowded=True),
        make_case("empty_and_dt_only", 3, images=12, categories=2, gt_per_image=(1, 5), dt_extra=(1, 3),
                  jitter=10, empty_images=3, dt_only_images=4),
        make_case("crowd_regions", 4, images=15, categories=2, gt_per_image=(1, 6), dt_extra=(0, 3), jitter=10,
                  crowd_rate=0.3, crowd_only_category=True),
        make_case("tied_scores", 5, images=10, categories=2, gt_per_image=(2, 6), dt_extra=(0, 4), jitter=4,
                  score_decimals=1),
        make_case("no_detections", 6, images=4, categories=1, gt_per_image=(1, 3), dt_extra=(0, 0), jitter=0,
                  no_detections=True),
        make_case("nothing_at_all", 8, images=3, categories=1, gt_per_image=(0, 0), dt_extra=(0, 0), jitter=0,
                  no_detections=True),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixture instead of writing")
    args = parser.parse_args()
    results = []
    for case in cases():
        case["expected"] = evaluate(case)
        results.append(case)
        e = case["expected"]
        print(f"{case['name']:20s} AP={e['ap']:.6f} AP50={e['ap50']:.6f} AP75={e['ap75']:.6f} "
              f"gts={len(case['annotations'])} dts={len(case['detections'])}")
    import pycocotools
    document = {"generator": "scripts/crosscheck_pycocotools.py",
                "pycocotools_version": getattr(pycocotools, "__version__", "unknown"),
                "numpy_version": np.__version__, "cases": results}
    if args.check:
        with open(FIXTURE) as f:
            committed = json.load(f)
        same = committed["cases"] == json.loads(json.dumps(results))
        print("fixture matches" if same else "fixture differs")
        sys.exit(0 if same else 1)
    with open(FIXTURE, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.normpath(FIXTURE)}")


if __name__ == "__main__":
    main()
