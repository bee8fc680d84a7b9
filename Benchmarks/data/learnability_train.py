#!/usr/bin/env python3
"""Step 2 of the synthetic-data learnability check: train a tiny CenterNet-style detector on CPU
for a fixed time budget and report VOC AP@0.5 on the val split.

This is a reference experiment for the synthetic generator's defaults (the product never runs
Python). It needs PyTorch; on Debian use /usr/bin/python3 with python3-torch:

    edgenas data synth --output /tmp/synth --seed 0 --train 400 --val 100
    python3 Benchmarks/data/learnability_prepare.py --voc /tmp/synth --out /tmp/synth_np
    /usr/bin/python3 Benchmarks/data/learnability_train.py --data /tmp/synth_np --seconds 180 --threads 2
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--seconds", type=float, default=180)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
STRIDE = 4


def load(split):
    images = np.load(os.path.join(args.data, f"{split}_images.npy"))
    with open(os.path.join(args.data, f"{split}_boxes.json")) as f:
        boxes = json.load(f)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, boxes


def block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCenterNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.s2 = block(3, 16, 2)
        self.s4 = nn.Sequential(block(16, 32, 2), block(32, 32, 1))
        self.s8 = nn.Sequential(block(32, 64, 2), block(64, 64, 1))
        self.s16 = nn.Sequential(block(64, 96, 2), block(96, 96, 1), block(96, 96, 1))
        self.up8 = block(96 + 64, 64, 1)
        self.up4 = block(64 + 32, 32, 1)
        self.head = nn.Conv2d(32, 5, 1)  # heatmap logit, log width, log height, offset x, offset y
        self.head.bias.data[0] = -2.19  # prior probability 0.1

    def forward(self, x):
        s4 = self.s4(self.s2(x))
        s8 = self.s8(s4)
        s16 = self.s16(s8)
        u8 = self.up8(torch.cat([F.interpolate(s16, scale_factor=2), s8], 1))
        u4 = self.up4(torch.cat([F.interpolate(u8, scale_factor=2), s4], 1))
        return self.head(u4)


def targets(boxes_batch, size):
    n, g = len(boxes_batch), size // STRIDE
    heat = torch.zeros(n, 1, g, g)
    reg = torch.zeros(n, 4, g, g)
    mask = torch.zeros(n, 1, g, g)
    ys, xs = torch.meshgrid(torch.arange(g).float(), torch.arange(g).float(), indexing="ij")
    for i, boxes in enumerate(boxes_batch):
        for x0, y0, x1, y1 in boxes:
            cx, cy, w, h = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE, (x1 - x0), (y1 - y0)
            ix, iy = min(int(cx), g - 1), min(int(cy), g - 1)
            sigma = max(0.5, min(w, h) / STRIDE / 6)
            heat[i, 0] = torch.maximum(heat[i, 0], torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2)))
            reg[i, :, iy, ix] = torch.tensor([math.log(w / STRIDE), math.log(h / STRIDE), cx - ix, cy - iy])
            mask[i, 0, iy, ix] = 1
    return heat, reg, mask


def loss_fn(out, heat, reg, mask):
    p = torch.sigmoid(out[:, :1]).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat) ** 4 * p ** 2 * torch.log(1 - p)).sum()
    count = pos.sum().clamp(min=1)
    l1 = (F.l1_loss(out[:, 1:], reg, reduction="none") * mask).sum() / count
    return focal / count + l1


def decode(out, threshold=0.05, top=50):
    heat = torch.sigmoid(out[:, :1])
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat).float()
    results = []
    for i in range(out.shape[0]):
        scores, idx = peaks[i, 0].flatten().topk(top)
        g = out.shape[-1]
        dets = []
        for s, k in zip(scores.tolist(), idx.tolist()):
            if s < threshold:
                break
            iy, ix = divmod(k, g)
            lw, lh, ox, oy = out[i, 1:, iy, ix].tolist()
            cx, cy = (ix + ox) * STRIDE, (iy + oy) * STRIDE
            w, h = math.exp(lw) * STRIDE, math.exp(lh) * STRIDE
            dets.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, s])
        results.append(dets)
    return results


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def voc_ap(dets, gts, threshold=0.5):
    ranked = sorted(((d[4], i, d[:4]) for i, ds in enumerate(dets) for d in ds), key=lambda t: -t[0])
    taken = [[False] * len(g) for g in gts]
    npos = sum(len(g) for g in gts)
    tp = fp = 0
    rec, prec = [], []
    for _, i, box in ranked:
        overlaps = [iou(box, g) for g in gts[i]]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best >= 0 and overlaps[best] > threshold and not taken[i][best]:
            taken[i][best] = True
            tp += 1
        else:
            fp += 1
        rec.append(tp / npos)
        prec.append(tp / (tp + fp))
    mrec, mpre = [0] + rec + [1], [0] + prec + [0]
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    return sum((mrec[k] - mrec[k - 1]) * mpre[k] for k in range(1, len(mrec)) if mrec[k] != mrec[k - 1])


train_x, train_boxes = load("train")
val_x, val_boxes = load("val")
size = train_x.shape[-1]
model = TinyCenterNet()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
start, step, epoch = time.time(), 0, 0
while time.time() - start < args.seconds:
    order = rng.permutation(len(train_x))
    model.train()
    for b in range(0, len(order) - 31, 32):
        idx = order[b:b + 32]
        x = train_x[idx].clone()
        boxes = [list(train_boxes[i]) for i in idx]
        for j in range(len(idx)):  # horizontal flip
            if rng.random() < 0.5:
                x[j] = x[j].flip(-1)
                boxes[j] = [[size - x1, y0, size - x0, y1] for x0, y0, x1, y1 in boxes[j]]
        heat, reg, mask = targets(boxes, size)
        loss = loss_fn(model(x), heat, reg, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if time.time() - start > args.seconds:
            break
    epoch += 1
    print(f"epoch {epoch} step {step} loss {loss.item():.3f} elapsed {time.time() - start:.0f}s", flush=True)
model.eval()
with torch.no_grad():
    dets = decode(model(val_x))
print(f"params {sum(p.numel() for p in model.parameters())}, input {size}x{size}, "
      f"{step} steps in {time.time() - start:.0f} s, val AP@0.5 = {voc_ap(dets, val_boxes):.3f}")
