#!/usr/bin/env python3
"""AP@0.5 of FastestDet's published ONNX model on a Pascal VOC dataset, computed the way
`edgenas eval --init` computes it for the imported checkpoint, as the reference for its import.

    python3 scripts/reference/fastestdet_onnx_ap.py \
        --onnx ../shared/weights/fastestdet-coco/FastestDet.onnx --names ../shared/weights/fastestdet-coco/coco.names \
        --data ../shared/data/coco128-person --split val [--size 352] [--classes person] [--resize letterbox]

Same preprocessing as EdgeNAS (letterbox with bilinear sampling at pixel centres, grey 114
padding, pixels / 255; FastestDet reads BGR, so the channels are swapped for this model) and
the same decoding (scripts/detection_check.py: FastestDet's score obj^0.6 * cls^0.4, per-class NMS
at IoU 0.45, 100 detections). It prints two figures:
- "published": the model's 80 classes, each detection counted for the dataset class of its best
  class (others dropped), as `edgenas eval --init` reports for the checkpoint's own classes;
- "subset": the class scores renormalised over the dataset's classes, which is what the imported
  network with only those classes computes (for one class the class score is 1).
`--resize stretch` uses FastestDet's own plain resize instead (the shared README's 0.469).
Needs numpy, onnxruntime and pillow (the test virtual environment has them).
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from detection_check import decode, voc_ap  # noqa: E402  (the decoder and AP the export checks use)


def warp(pixels, scale, offset_x, offset_y, out_w, out_h, fill=114):
    """EdgeNAS's ImageOps.warp: bilinear sampling at pixel centres, `fill` outside the image."""
    height, width, _ = pixels.shape
    source = pixels.astype(np.float64)

    def axis(count, offset, size):
        s = (np.arange(count) + 0.5 - offset) / scale - 0.5
        valid = (s >= -0.5) & (s <= size - 0.5)
        clamped = np.clip(s, 0, size - 1)
        low = np.floor(clamped).astype(int)
        return valid, low, np.minimum(low + 1, size - 1), clamped - low

    vx, x0, x1, wx = axis(out_w, offset_x, width)
    vy, y0, y1, wy = axis(out_h, offset_y, height)
    upper = source[y0][:, x0] + (source[y0][:, x1] - source[y0][:, x0]) * wx[None, :, None]
    lower = source[y1][:, x0] + (source[y1][:, x1] - source[y1][:, x0]) * wx[None, :, None]
    value = np.floor(upper + (lower - upper) * wy[:, None, None] + 0.5)  # Swift's rounded(): half away from zero
    output = np.full((out_h, out_w, 3), fill, dtype=np.float64)
    mask = vy[:, None] & vx[None, :]
    output[mask] = value[mask]
    return output.astype(np.uint8)


def read_annotation(path, classes):
    root = ElementTree.parse(path).getroot()
    objects = []
    for item in root.iter("object"):
        name = item.findtext("name").strip()
        if name not in classes:
            continue
        box = item.find("bndbox")
        coordinates = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        objects.append({"classIndex": classes.index(name), "difficult": item.findtext("difficult", "0").strip() == "1",
                        "box": coordinates})
    return objects


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--names", required=True, help="the model's class list (coco.names)")
    parser.add_argument("--data", required=True, help="Pascal VOC root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--size", type=int, default=352)
    parser.add_argument("--classes", default="person", help="dataset classes, comma separated")
    parser.add_argument("--resize", choices=["letterbox", "stretch"], default="letterbox")
    args = parser.parse_args()

    model_classes = [line.strip() for line in open(args.names) if line.strip()]
    classes = [c.strip() for c in args.classes.split(",")]
    to_dataset = [classes.index(c) if c in classes else None for c in model_classes]
    subset = [model_classes.index(c) for c in classes]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    manifest = {"inputShape": [1, 3, args.size, args.size], "scoreThreshold": 0.001, "nmsIoU": 0.45,
                "maxDetections": 100}

    ids = [line.strip() for line in open(os.path.join(args.data, "ImageSets/Main", args.split + ".txt")) if line.strip()]
    truth, published, subset_detections = [], [], []
    for image_id in ids:
        truth.append(read_annotation(os.path.join(args.data, "Annotations", image_id + ".xml"), classes))
        pixels = np.asarray(Image.open(os.path.join(args.data, "JPEGImages", image_id + ".jpg")).convert("RGB"))
        height, width, _ = pixels.shape
        if args.resize == "letterbox":
            scale = min(args.size / width, args.size / height)
            scale_x = scale_y = scale
            offset_x, offset_y = (args.size - width * scale) / 2, (args.size - height * scale) / 2
            network_input = warp(pixels, scale, offset_x, offset_y, args.size, args.size)
        else:
            scale_x, scale_y, offset_x, offset_y = args.size / width, args.size / height, 0.0, 0.0
            network_input = np.asarray(Image.fromarray(pixels).resize((args.size, args.size), Image.BILINEAR))
        bgr = network_input[:, :, ::-1].astype(np.float32) / 255
        output = session.run(None, {input_name: bgr.transpose(2, 0, 1)[None].copy()})[0][0]

        def to_source(detections, mapping):
            kept = []
            for score, cls, x0, y0, x1, y1 in detections:
                if mapping[cls] is None:
                    continue
                kept.append((score, mapping[cls], (x0 - offset_x) / scale_x, (y0 - offset_y) / scale_y,
                             (x1 - offset_x) / scale_x, (y1 - offset_y) / scale_y))
            return kept

        published.append(to_source(decode(output, {**manifest, "classCount": len(model_classes)}), to_dataset))
        probabilities = output[5:][subset]
        renormalised = np.concatenate([output[:5], probabilities / probabilities.sum(axis=0, keepdims=True)])
        subset_detections.append(to_source(decode(renormalised, {**manifest, "classCount": len(classes)}), list(range(len(classes)))))

    def mean_ap(images):
        values = [voc_ap(images, truth, c) for c in range(len(classes))]
        values = [v for v in values if v is not None]
        return sum(values) / len(values)

    print(f"{len(ids)} images, {sum(len(t) for t in truth)} boxes, {args.resize} to {args.size} px")
    print(f"published ({len(model_classes)} classes, scored for {', '.join(classes)}): AP@0.5 {mean_ap(published):.4f}")
    print(f"subset (classes {', '.join(classes)} only): AP@0.5 {mean_ap(subset_detections):.4f}")


if __name__ == "__main__":
    main()
