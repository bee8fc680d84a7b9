#!/usr/bin/python3
"""Parameter and MAC counts of FastestDet in PyTorch, the reference for DetectorGraph.

Written from the published FastestDet structure (Megvii ShuffleV2 units, SPP of three
depthwise 5x5 branches, three-branch head); MACs are counted by forward hooks on every
Conv2d actually run. Run with Debian's python3 (python3-torch):

    /usr/bin/python3 scripts/reference/fastestdet_counts.py > Tests/VisionTests/Fixtures/fastestdet_counts.json
"""
import json
import torch
import torch.nn as nn


def conv_bn(cin, cout, k=1, s=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Unit(nn.Module):
    """ShuffleV2 unit: channel split (stride 1) or two branches (stride 2).

    `megvii=True` is FastestDet's published form (the main branch makes cout - cin channels);
    the default gives each branch cout / 2 channels as torchvision does, which EdgeNAS uses
    because it stays balanced when a searched stage does not double its channels. The two
    are the same network whenever cout == 2 * cin, as in every baseline stage.
    """

    def __init__(self, cin, cout, stride, megvii=False):
        super().__init__()
        self.stride = stride
        inp = cin if stride == 2 else cin // 2
        mid = cout // 2
        main_out = cout - inp if megvii else cout // 2
        proj_out = inp if megvii else cout // 2
        self.main = nn.Sequential(conv_bn(inp, mid), conv_bn(mid, mid, 3, stride, mid, relu=False),
                                  conv_bn(mid, main_out))
        self.proj = (nn.Sequential(conv_bn(inp, inp, 3, stride, inp, relu=False), conv_bn(inp, proj_out))
                     if stride == 2 else None)

    def forward(self, x):
        if self.stride == 1:
            b, c, h, w = x.shape
            x = x.reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
            return torch.cat((x[0], self.main(x[1])), 1)
        return torch.cat((self.proj(x), self.main(x)), 1)


class FastestDet(nn.Module):
    def __init__(self, classes=1, kernel=5, groups=1, head=96, stem=24, stages=(48, 96, 192),
                 repeats=(4, 8, 4), neck=96, spp=3, megvii=False):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, stem, 3, 2), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], stem
        for cout, n in zip(stages, repeats):
            units = [Unit(cin, cout, 2, megvii)] + [Unit(cout, cout, 1, megvii) for _ in range(n - 1)]
            blocks.append(nn.Sequential(*units))
            cin = cout
        self.stages = nn.ModuleList(blocks)
        self.reduce = conv_bn(sum(stages), neck)
        self.spp = nn.ModuleList(
            nn.Sequential(*[conv_bn(neck, neck, 5, 1, neck) for _ in range(depth)]) for depth in range(1, spp + 1))
        self.project = conv_bn(neck * spp, neck, relu=False)
        self.head_in = conv_bn(neck, head, 1, 1, groups)
        self.branches = nn.ModuleList(
            nn.Sequential(conv_bn(head, head, kernel, 1, head), conv_bn(head, n, relu=False))
            for n in (1, 4, classes))

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        p1 = nn.functional.avg_pool2d(feats[0], 3, 2, 1)
        p3 = nn.functional.interpolate(feats[2], scale_factor=2, mode="nearest")
        x = self.reduce(torch.cat((p1, feats[1], p3), 1))
        y = torch.cat([branch(x) for branch in self.spp], 1)
        x = torch.relu(x + self.project(y))
        x = self.head_in(x)
        obj, box, cls = (branch(x) for branch in self.branches)
        return torch.cat((obj.sigmoid(), box, cls.softmax(1)), 1)


def count(config, size):
    """`size`: the side of a square input, or (width, height)."""
    width, height = size if isinstance(size, tuple) else (size, size)
    model = FastestDet(**config).eval()
    macs = []

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        macs.append(output.numel() * (module.in_channels // module.groups) * k)

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, height, width))
    return {"params": sum(p.numel() for p in model.parameters()), "macs": sum(macs),
            "output_shape": list(out.shape)}


CASES = [
    ("k5-g1-c96-w320", dict(), 320),
    ("k3-g8-c24-w224", dict(kernel=3, groups=8, head=24), 224),
    ("k5-g2-c48-w256-n80", dict(groups=2, head=48, classes=80), 256),
    ("k3-g4-c64-w288-st32.64.128-r2.4.2-nk64-spp1",
     dict(kernel=3, groups=4, head=64, stages=(32, 64, 128), repeats=(2, 4, 2), neck=64, spp=1), 288),
    ("k3-g2-c64-w288-h224", dict(kernel=3, groups=2, head=64), (288, 224)),
]

if __name__ == "__main__":
    published_form = count(dict(megvii=True), 320)
    assert published_form == count(dict(), 320), "baseline differs between unit styles"
    print(json.dumps({name: count(cfg, size) for name, cfg, size in CASES}, indent=2))
