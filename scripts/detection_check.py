"""What the export check scripts share (scripts/check_onnx.py, scripts/check_tflite.py): reading a
check bundle's float files, FastestDet's decoding and NMS, Pascal VOC AP@0.5 as EdgeNAS computes it,
and INT8 differences in quantization steps. Outputs here are EdgeNAS's layout, [N, 5 + classes, G, G].
"""
import json

import numpy as np


def load_floats(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def decode(output, manifest):
    """Detections [(score, class, x0, y0, x1, y1)] of one image's output [5 + classes, rows, columns]
    in the pixels of the manifest's input [N, 3, height, width]."""
    rows, columns = output.shape[1], output.shape[2]
    height, width = manifest["inputShape"][-2], manifest["inputShape"][-1]
    classes = manifest["classCount"]
    flat = output.reshape(output.shape[0], -1).astype(np.float64)
    objectness = flat[0]
    probabilities = flat[5:5 + classes]
    best_class = np.argmax(probabilities, axis=0)  # first of equal maxima, like the Swift loop
    best_probability = probabilities[best_class, np.arange(flat.shape[1])]
    scores = np.power(np.maximum(0, objectness), 0.6) * np.power(np.maximum(0, best_probability), 0.4)
    cells = np.nonzero(scores >= manifest["scoreThreshold"])[0]
    x = (cells % columns).astype(np.float64)
    y = (cells // columns).astype(np.float64)
    cx = (x + np.tanh(flat[1, cells])) / columns
    cy = (y + np.tanh(flat[2, cells])) / rows
    w = 1 / (1 + np.exp(-flat[3, cells]))
    h = 1 / (1 + np.exp(-flat[4, cells]))
    boxes = np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], axis=1)
    boxes = np.clip(boxes, 0, [width, height, width, height])
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


def int8_steps(ours, theirs, scales):
    """Per-branch differences in quantization steps: objectness as logits, box as is, classes as is."""
    clip = lambda p: np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    logit = lambda p: np.log(clip(p) / (1 - clip(p)))
    objectness = np.abs(logit(ours[:, 0]) - logit(theirs[:, 0])) / scales[0]
    box = np.abs(ours[:, 1:5].astype(np.float64) - theirs[:, 1:5]) / scales[1]
    return {"objectness": objectness, "box": box}


def branch_steps(pairs, scales, branch, figures):
    """Mean difference in quantization steps of one head branch for each named pair of outputs
    ({"a_vs_b": (a, b)}); records mean, median and 99th percentile in figures, returns the means."""
    means = {}
    for pair, (a, b) in pairs.items():
        values = int8_steps(a, b, scales)[branch]
        means[pair] = float(np.mean(values))
        figures[f"{branch}_{pair}_mean_steps"] = means[pair]
        figures[f"{branch}_{pair}_median_steps"] = float(np.median(values))
        figures[f"{branch}_{pair}_p99_steps"] = float(np.percentile(values, 99))
    return means


def fp32_close(ours, theirs, tolerance):
    """Whether every FP32 output is within tolerance x (1 + |EdgeNAS's|): float sums in another order
    differ by more on large outputs (box logits up to ~10) than on probabilities."""
    return bool(np.all(np.abs(ours - theirs) <= tolerance * (1 + np.abs(ours))))


def int8_failures(runtime, branch, versus_edgenas, edgenas_versus_fp32, versus_fp32, max_steps, error_ratio, engine):
    """The INT8 verdict of both check scripts, from mean differences in quantization steps: another
    runtime on EdgeNAS's grids must agree with EdgeNAS's INT8 to below max_steps on average (runtimes
    that requantize in integers differ only in rare roundings; EdgeNAS's reference is libtorch on
    QNNPACK, whose arithmetic is theirs), and its own error against FP32 must be within error_ratio
    of EdgeNAS's."""
    failures = []
    if versus_edgenas >= max_steps:
        hint = "" if engine in (None, "qnnpack") else f"; EdgeNAS's INT8 ran on {engine}, which rounds differently: export with --engine qnnpack"
        failures.append(f"int8 {branch}: {runtime} and EdgeNAS INT8 differ by {versus_edgenas:.2f} steps on average, "
                        f"not below {max_steps}{hint}")
    if versus_fp32 > error_ratio * edgenas_versus_fp32:
        failures.append(f"int8 {branch}: {runtime}'s error against FP32 ({versus_fp32:.2f} steps) exceeds "
                        f"{error_ratio} x EdgeNAS's ({edgenas_versus_fp32:.2f})")
    return failures


def finish(result, failures, json_path):
    """Writes the figures (when asked), prints the verdict and returns the exit status."""
    result["failures"] = failures
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    for failure in failures:
        print("FAIL:", failure)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0
