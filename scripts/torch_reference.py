#!/usr/bin/python3
"""Reference values for EdgeNAS's Torch parity tests, computed with PyTorch (Debian python3-torch).

Writes Tests/TorchTests/Fixtures/shufflenet_unit_parity.json. For a ShuffleNetV2 unit of stride 1
and one of stride 2 (torchvision's InvertedResidual, re-declared here because Debian ships no
torchvision) with seeded weights, randomised batch-norm affine weights and running statistics,
and a fixed input, it records:
  - the initial state (parameters and buffers, PyTorch state_dict names),
  - the training-mode forward output and the evaluation-mode forward output,
  - the loss sum(output * loss_weights) and the gradient of every parameter,
  - running statistics after the training forward,
  - parameters after two SGD steps (momentum 0.9, Nesterov, weight decay 1e-4, lr 0.1; training
    mode) and after two AdamW steps (lr 0.01, weight decay 0.05; evaluation mode), each step doing
    forward, backward, step.
AdamW runs in evaluation mode because in training mode the biases of the batch norms that feed a
1x1 conv and another batch norm (branch1.1, branch2.4) get a gradient that is exactly zero in
theory and rounding noise (~1e-9) in practice; Adam divides by its magnitude, so both
implementations would step by +-lr in directions decided by noise.

Run: /usr/bin/python3 scripts/torch_reference.py
"""
import copy
import json
import os

import torch
from torch import nn


def depthwise(channels, stride):
    return nn.Conv2d(channels, channels, 3, stride, 1, bias=False, groups=channels)


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise(inp, stride), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            depthwise(half, stride), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def flat(t):
    return {"shape": list(t.shape), "values": t.detach().reshape(-1).tolist()}


def make_case(inp, oup, stride, seed):
    torch.manual_seed(seed)
    block = InvertedResidual(inp, oup, stride)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.8, 1.2)
    x = torch.randn(2, inp, 8, 8)
    out_shape = (2, oup, 8 // stride, 8 // stride)
    loss_weights = torch.randn(out_shape)
    case = {
        "input_channels": inp, "output_channels": oup, "stride": stride,
        "input": flat(x), "loss_weights": flat(loss_weights),
        "initial_state": {k: flat(v) for k, v in block.state_dict().items()},
    }

    evaluated = copy.deepcopy(block).eval()
    with torch.no_grad():
        case["eval_output"] = flat(evaluated(x))

    trained = copy.deepcopy(block).train()
    out = trained(x)
    loss = (out * loss_weights).sum()
    loss.backward()
    case["train_output"] = flat(out)
    case["loss"] = loss.item()
    case["gradients"] = {k: flat(p.grad) for k, p in trained.named_parameters()}
    case["state_after_forward"] = {k: flat(v) for k, v in trained.state_dict().items()}

    for name, training, make_optimizer in [
        ("sgd", True, lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)),
        ("adamw", False, lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.05)),
    ]:
        model = copy.deepcopy(block).train(training)
        optimizer = make_optimizer(model.parameters())
        for _ in range(2):
            optimizer.zero_grad()
            (model(x) * loss_weights).sum().backward()
            optimizer.step()
        case[f"parameters_after_{name}"] = {k: flat(p) for k, p in model.named_parameters()}
    return case


def main():
    torch.set_num_threads(1)
    fixture = {
        "generator": "scripts/torch_reference.py",
        "torch_version": torch.__version__,
        "cases": [make_case(16, 16, 1, seed=1), make_case(8, 16, 2, seed=2)],
    }
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "TorchTests", "Fixtures", "shufflenet_unit_parity.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
