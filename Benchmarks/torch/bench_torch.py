#!/usr/bin/python3
"""PyTorch peer of edgenas-bench-torch: training step of the ShuffleNetV2 0.5x backbone or of the
whole FastestDet baseline (same model, loss, optimizer and options). Run through Benchmarks/torch/run.sh.

Usage: /usr/bin/python3 Benchmarks/torch/bench_torch.py [--model backbone|detector] [--channels-last] [--batch 16] [--size 320] [--threads 2] [--warmup 2] [--steps 5]

--channels-last stores the model and the input channels-last (torch.channels_last), as EdgeNAS trains
the detector; without it the model runs in PyTorch's default (NCHW) layout.
"""
import argparse
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from torch_reference import InvertedResidual  # noqa: E402  (the same unit the parity tests use)
from reference.fastestdet_counts import FastestDet  # noqa: E402  (the detector DetectorGraph is checked against)


class Backbone(nn.Module):
    """torchvision's shufflenet_v2_x0_5 without conv5/fc, returning stride 8/16/32 maps."""

    def __init__(self, repeats=(4, 8, 4), channels=(24, 48, 96, 192)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        width = channels[0]
        for index, (count, out) in enumerate(zip(repeats, channels[1:])):
            units = [InvertedResidual(width, out, 2)] + [InvertedResidual(out, out, 1) for _ in range(count - 1)]
            setattr(self, f"stage{index + 2}", nn.Sequential(*units))
            width = out

    def forward(self, x):
        s8 = self.stage2(self.maxpool(self.conv1(x)))
        s16 = self.stage3(s8)
        return s8, s16, self.stage4(s16)


def median(values):
    return sorted(values)[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["backbone", "detector"], default="backbone")
    parser.add_argument("--channels-last", action="store_true")
    for name, default in [("batch", 16), ("size", 320), ("threads", 2), ("warmup", 2), ("steps", 5)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    model = (Backbone() if options.model == "backbone" else FastestDet()).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(options.batch, 3, options.size, options.size)
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step():
        optimizer.zero_grad()
        if options.model == "backbone":
            s8, s16, s32 = model(images)
            loss = s8.mean() + s16.mean() + s32.mean()
        else:
            loss = model(images).mean()
        loss.backward()
        optimizer.step()

    for _ in range(options.warmup):
        step()
    times, cpu_times = [], []
    for index in range(options.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.process_time() - cpu_start) * 1000)
        print(f"step {index} ms={times[-1]:.1f} cpu_ms={cpu_times[-1]:.1f}")
    print(f"model={options.model} channels_last={options.channels_last} threads={torch.get_num_threads()} omp_wait_policy={os.environ.get('OMP_WAIT_POLICY', 'unset')} "
          f"median_cpu_ms={median(cpu_times):.1f} median_ms={median(times):.1f}")


if __name__ == "__main__":
    main()
