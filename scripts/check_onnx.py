#!/usr/bin/env python3
"""Checks the ONNX models written by `edgenas export` in onnxruntime, against EdgeNAS's own outputs.

    scripts/python-env.sh        (once: .venv with onnx, onnxruntime, numpy; scripts/install.sh --deps runs it)
    edgenas export --data DATA --checkpoint RUN --int8 --check-images 100 --output export
    .venv/bin/python scripts/check_onnx.py export/check [--json result.json]

(or any Python with `pip install onnx onnxruntime numpy`).

The bundle (export/check) holds the validation images letterboxed as the model expects, EdgeNAS's
outputs on them (libtorch FP32 and libtorch INT8), the ground truth and EdgeNAS's AP@0.5. This script:
1. runs onnx.checker (full check, with shape inference) on every model;
2. runs each model in onnxruntime (one thread, all graph optimisations, so QDQ pairs fuse into
   integer kernels) on the same inputs;
3. compares outputs: FP32 within --fp32-tolerance (absolute). INT8 in units of the quantization
   step of each head branch (objectness in logit space, since the output holds its sigmoid):
   two INT8 runtimes on the same grids round their integer arithmetic differently, so single
   values drift apart by a few steps over the network's ~60 requantizations. The quantization
   tolerance is therefore relative to the quantization error itself: onnxruntime's INT8 must
   agree with EdgeNAS's INT8 at least as closely (mean difference) as EdgeNAS's INT8 agrees with
   FP32, and its own error against FP32 must be within --int8-error-ratio of EdgeNAS's;
4. decodes detections (FastestDet scoring, per-class NMS) and computes Pascal VOC AP@0.5 (all-point)
   for every output; first checks that this reproduces the AP EdgeNAS computed on its own outputs
   (so the comparison below tests the runtime, not two decoders), then that onnxruntime's AP differs
   from EdgeNAS's by at most --ap-tolerance for each precision.
Exits 1 when a check fails.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def load_floats(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def decode(output, manifest):
    """Detections [(score, class, x0, y0, x1, y1)] of one image's output [5 + classes, G, G]."""
    grid = manifest["gridSize"]
    size = manifest["inputShape"][-1]
    classes = manifest["classCount"]
    flat = output.reshape(output.shape[0], -1).astype(np.float64)
    objectness = flat[0]
    probabilities = flat[5:5 + classes]
    best_class = np.argmax(probabilities, axis=0)  # first of equal maxima, like the Swift loop
    best_probability = probabilities[best_class, np.arange(flat.shape[1])]
    scores = np.power(np.maximum(0, objectness), 0.6) * np.power(np.maximum(0, best_probability), 0.4)
    cells = np.nonzero(scores >= manifest["scoreThreshold"])[0]
    x = (cells % grid).astype(np.float64)
    y = (cells // grid).astype(np.float64)
    cx = (x + np.tanh(flat[1, cells])) / grid
    cy = (y + np.tanh(flat[2, cells])) / grid
    w = 1 / (1 + np.exp(-flat[3, cells]))
    h = 1 / (1 + np.exp(-flat[4, cells]))
    boxes = np.stack([(cx - w / 2) * size, (cy - h / 2) * size, (cx + w / 2) * size, (cy + h / 2) * size], axis=1)
    boxes = np.clip(boxes, 0, size)
    detections = [(scores[c], int(best_class[c]), *boxes[i]) for i, c in enumerate(cells)]
    return nms(detections, manifest["nmsIoU"], manifest["maxDetections"])


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def nms(detections, threshold, maximum):
    order = sorted(range(len(detections)), key=lambda i: (-detections[i][0], i))
    kept, kept_boxes = [], {}
    for i in order:
        score, cls, *box = detections[i]
        if any(iou(other, box) > threshold for other in kept_boxes.get(cls, [])):
            continue
        kept_boxes.setdefault(cls, []).append(box)
        kept.append(detections[i])
        if len(kept) == maximum:
            break
    return kept


def voc_ap(images, truth, class_index, threshold=0.5):
    """Pascal VOC all-point AP of one class; None without positives."""
    positives = sum(1 for objects in truth for o in objects if o["classIndex"] == class_index and not o["difficult"])
    if positives == 0:
        return None
    ranked = [(d[0], image, order, d[2:]) for image, dets in enumerate(images)
              for order, d in enumerate(dets) if d[1] == class_index]
    ranked.sort(key=lambda r: (-r[0], r[1], r[2]))
    taken = [[False] * len(objects) for objects in truth]
    tp = fp = 0
    recall, precision = [], []
    for score, image, order, box in ranked:
        best, best_overlap = -1, -np.inf
        for index, o in enumerate(truth[image]):
            if o["classIndex"] != class_index:
                continue
            overlap = iou(o["box"], box)
            if overlap > best_overlap:
                best, best_overlap = index, overlap
        if best >= 0 and best_overlap > threshold:
            if truth[image][best]["difficult"]:
                continue
            if taken[image][best]:
                fp += 1
            else:
                taken[image][best] = True
                tp += 1
        else:
            fp += 1
        recall.append(tp / positives)
        precision.append(tp / (tp + fp))
    mrec = [0.0] + recall + [1.0]
    mpre = [0.0] + precision + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def average_precision(outputs, manifest):
    images = [decode(output, manifest) for output in outputs]
    per_class = [voc_ap(images, manifest["groundTruth"], c) for c in range(manifest["classCount"])]
    defined = [ap for ap in per_class if ap is not None]
    return sum(defined) / len(defined) if defined else 0.0


def run_onnxruntime(path, inputs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[i:i + 1]})[0] for i in range(inputs.shape[0])])


def int8_steps(ours, theirs, scales):
    """Per-branch differences in quantization steps: objectness as logits, box as is, classes as is."""
    clip = lambda p: np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    logit = lambda p: np.log(clip(p) / (1 - clip(p)))
    objectness = np.abs(logit(ours[:, 0]) - logit(theirs[:, 0])) / scales[0]
    box = np.abs(ours[:, 1:5].astype(np.float64) - theirs[:, 1:5]) / scales[1]
    return {"objectness": objectness, "box": box}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", help="the check directory written by 'edgenas export --check-images N'")
    parser.add_argument("--fp32-tolerance", type=float, default=1e-4)
    parser.add_argument("--ap-tolerance", type=float, default=0.01)
    parser.add_argument("--int8-error-ratio", type=float, default=1.1,
                        help="INT8: largest allowed mean |onnxruntime - FP32| / mean |EdgeNAS INT8 - FP32| per branch")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with open(os.path.join(args.bundle, "check.json")) as f:
        manifest = json.load(f)
    inputs = load_floats(os.path.join(args.bundle, manifest["inputs"]), manifest["inputShape"])
    failures, result = [], {"architecture": manifest["architecture"], "images": manifest["inputShape"][0],
                            "onnxruntime": ort.__version__, "onnx": onnx.__version__, "precisions": {}}
    print(f"{manifest['architecture']}: {inputs.shape[0]} images, onnxruntime {ort.__version__}, onnx {onnx.__version__}")

    for precision, relative in sorted(manifest["models"].items()):
        path = os.path.normpath(os.path.join(args.bundle, relative))
        onnx.checker.check_model(path, full_check=True)
        ours_run = manifest["runs"][f"edgenas-{precision}"]
        ours = load_floats(os.path.join(args.bundle, ours_run["outputs"]), manifest["outputShape"])
        theirs = run_onnxruntime(path, inputs)
        figures = {"model": path, "checker": "ok", "max_abs_diff": float(np.max(np.abs(ours - theirs)))}

        ap_ours_python = average_precision(ours, manifest)
        ap_theirs = average_precision(theirs, manifest)
        figures.update(ap_edgenas=ours_run["averagePrecision50"], ap_edgenas_recomputed=ap_ours_python, ap_onnxruntime=ap_theirs)
        if abs(ap_ours_python - ours_run["averagePrecision50"]) > 1e-6:
            failures.append(f"{precision}: this script's AP of EdgeNAS's outputs {ap_ours_python:.6f} != EdgeNAS's {ours_run['averagePrecision50']:.6f}")
        if abs(ap_theirs - ours_run["averagePrecision50"]) > args.ap_tolerance:
            failures.append(f"{precision}: onnxruntime AP@0.5 {ap_theirs:.4f} vs EdgeNAS {ours_run['averagePrecision50']:.4f} "
                            f"(tolerance {args.ap_tolerance})")

        if precision == "fp32":
            if figures["max_abs_diff"] > args.fp32_tolerance:
                failures.append(f"fp32: max |EdgeNAS - onnxruntime| = {figures['max_abs_diff']:.3g} > {args.fp32_tolerance}")
            print(f"fp32: checker ok; max |EdgeNAS - onnxruntime| = {figures['max_abs_diff']:.3g} (tolerance {args.fp32_tolerance}); "
                  f"AP@0.5 EdgeNAS {ours_run['averagePrecision50']:.4f}, onnxruntime {ap_theirs:.4f}")
        else:
            fp32 = load_floats(os.path.join(args.bundle, manifest["runs"]["edgenas-fp32"]["outputs"]), manifest["outputShape"])
            scales = manifest["int8BranchScales"]
            pairs = {"onnxruntime_vs_edgenas": (theirs, ours), "edgenas_vs_fp32": (ours, fp32), "onnxruntime_vs_fp32": (theirs, fp32)}
            summary = []
            for branch in ("objectness", "box"):
                means = {}
                for pair, (a, b) in pairs.items():
                    values = int8_steps(a, b, scales)[branch]
                    means[pair] = float(np.mean(values))
                    figures[f"{branch}_{pair}_mean_steps"] = means[pair]
                    figures[f"{branch}_{pair}_median_steps"] = float(np.median(values))
                    figures[f"{branch}_{pair}_p99_steps"] = float(np.percentile(values, 99))
                if means["onnxruntime_vs_edgenas"] > means["edgenas_vs_fp32"]:
                    failures.append(f"int8 {branch}: onnxruntime and EdgeNAS INT8 differ by {means['onnxruntime_vs_edgenas']:.2f} steps on "
                                    f"average, more than EdgeNAS INT8 differs from FP32 ({means['edgenas_vs_fp32']:.2f})")
                if means["onnxruntime_vs_fp32"] > args.int8_error_ratio * means["edgenas_vs_fp32"]:
                    failures.append(f"int8 {branch}: onnxruntime's error against FP32 ({means['onnxruntime_vs_fp32']:.2f} steps) exceeds "
                                    f"{args.int8_error_ratio} x EdgeNAS's ({means['edgenas_vs_fp32']:.2f})")
                summary.append(f"{branch} onnxruntime-EdgeNAS {means['onnxruntime_vs_edgenas']:.2f}, EdgeNAS-FP32 "
                               f"{means['edgenas_vs_fp32']:.2f}, onnxruntime-FP32 {means['onnxruntime_vs_fp32']:.2f}")
            print(f"int8: checker ok; mean differences in quantization steps: {'; '.join(summary)}; "
                  f"AP@0.5 EdgeNAS {ours_run['averagePrecision50']:.4f}, onnxruntime {ap_theirs:.4f}")
        result["precisions"][precision] = figures

    result["failures"] = failures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    for failure in failures:
        print("FAIL:", failure)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
