#!/usr/bin/env python3
"""Peer for `edgenas data bench`: decode the same VOC split with Pillow, one thread.

    pip install pillow
    python3 Benchmarks/data/decode_pillow.py --voc ../shared/data/coco128-person --split val
    swift build -c release --product edgenas
    .build/release/edgenas data bench --voc ../shared/data/coco128-person --split val

Both read each file from disk and decode it to 8-bit RGB; the best of `--repeats` passes counts.
"""
import argparse
import os
import time

import PIL
from PIL import Image


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--voc", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(os.path.join(args.voc, "ImageSets", "Main", f"{args.split}.txt")) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    paths = [os.path.join(args.voc, "JPEGImages", f"{i}.jpg") for i in ids]
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        megapixels = 0.0
        for path in paths:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
                rgb.tobytes()
                megapixels += rgb.width * rgb.height / 1e6
        best = min(best, time.perf_counter() - start)
    print(f"pillow decode (1 thread): {len(paths)} images in {best:.3f} s: {len(paths) / best:.1f} images/s, "
          f"{megapixels / best:.1f} Mpixel/s (Pillow {PIL.__version__})")


if __name__ == "__main__":
    main()
