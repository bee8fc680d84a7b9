#!/usr/bin/env python3
"""Step 1 of the synthetic-data learnability check: pack a VOC split into arrays.

Reads a VOC dataset written by `edgenas data synth`, resizes images by 1/--downscale with Pillow
and writes <out>/<split>_images.npy (uint8 N,H,W,3) and <out>/<split>_boxes.json (continuous
x0,y0,x1,y1 in the resized pixels). Run with a Python that has numpy and Pillow.
"""
import argparse
import json
import os
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

parser = argparse.ArgumentParser()
parser.add_argument("--voc", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--downscale", type=int, default=2)
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
for split in ["train", "val"]:
    with open(os.path.join(args.voc, "ImageSets", "Main", f"{split}.txt")) as f:
        ids = [line.strip() for line in f if line.strip()]
    images, boxes = [], []
    for i in ids:
        image = Image.open(os.path.join(args.voc, "JPEGImages", f"{i}.jpg")).convert("RGB")
        w, h = image.size
        image = image.resize((w // args.downscale, h // args.downscale), Image.BILINEAR)
        images.append(np.asarray(image))
        root = ET.parse(os.path.join(args.voc, "Annotations", f"{i}.xml")).getroot()
        image_boxes = []
        for obj in root.findall("object"):
            b = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(b.find(k).text) for k in ["xmin", "ymin", "xmax", "ymax"])
            image_boxes.append([(xmin - 1) / args.downscale, (ymin - 1) / args.downscale,
                                xmax / args.downscale, ymax / args.downscale])
        boxes.append(image_boxes)
    np.save(os.path.join(args.out, f"{split}_images.npy"), np.stack(images))
    with open(os.path.join(args.out, f"{split}_boxes.json"), "w") as f:
        json.dump(boxes, f)
    print(split, len(ids), "images", sum(len(b) for b in boxes), "boxes")
