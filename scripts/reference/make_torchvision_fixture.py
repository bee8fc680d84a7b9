#!/usr/bin/python3
"""Writes Tests/VisionTests/Fixtures/torchvision-shufflenet-x0.5-random.pth: torchvision's
shufflenet_v2_x0_5 with seeded random weights and random batch-norm statistics, saved with
torch.save as a user's checkpoint would be, without conv5 and the classifier (EdgeNAS's
detector does not use them, and they are 90 % of the file). It checks EdgeNAS's torchvision
name map (PretrainedWeightsTests). Needs Debian's python3-torch and python3-torchvision:

    /usr/bin/python3 scripts/reference/make_torchvision_fixture.py
"""
import pathlib

import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.shufflenet_v2_x0_5()
with torch.no_grad():
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            # Non-trivial statistics, so a map that mixes up buffers shows.
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
state = {k: v for k, v in model.state_dict().items() if not k.startswith(("conv5.", "fc."))}
out = pathlib.Path(__file__).resolve().parents[2] / "Tests/VisionTests/Fixtures/torchvision-shufflenet-x0.5-random.pth"
torch.save(state, out)
print(f"wrote {out} ({len(state)} tensors)")
