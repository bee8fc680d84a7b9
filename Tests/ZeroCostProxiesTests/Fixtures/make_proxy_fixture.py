#!/usr/bin/python3
"""Reference values of the zero-cost proxies on a tiny network, computed with python3-torch.

Run with Debian's interpreter (python3-torch imports only there; same libtorch 1.13 as EdgeNAS):

    /usr/bin/python3 Tests/ZeroCostProxiesTests/Fixtures/make_proxy_fixture.py

Writes proxies_tiny.json beside this script: the network's weights, the minibatch, and every
proxy's value. The Swift test rebuilds the same network from the weights and compares. Each proxy
is written here independently from the formulas in docs/estimators.md (torch for the network and
its gradients, numpy for the small matrices), on a fresh copy of the network, in float64.
"""
import copy
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Tiny(nn.Module):
    """conv3x3(3->4)+BN+ReLU, conv3x3 stride 2 (4->6)+BN+ReLU, global average pool, linear(6->3)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x, record=None):
        """Logits; `record` (a list) receives ('layer'|'relu', tensor) pairs in order."""
        a = self.conv1(x)
        if record is not None: record.append(("layer", a))
        a = F.relu(self.bn1(a))
        if record is not None: record.append(("relu", a))
        b = self.conv2(a)
        if record is not None: record.append(("layer", b))
        b = F.relu(self.bn2(b))
        if record is not None: record.append(("relu", b))
        out = self.fc(b.mean(dim=(2, 3)))
        if record is not None: record.append(("layer", out))
        return out

    def features(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))

    def weights(self):
        return [self.conv1.weight, self.conv2.weight, self.fc.weight]


K = 1e-5


def loss_of(net, x, y, record=None):
    return F.cross_entropy(net(x, record), y)


def weight_gradients(net, x, y, create_graph=False):
    return torch.autograd.grad(loss_of(net, x, y), net.weights(), create_graph=create_graph)


def input_jacobian(net, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).sum(), [x])
    return g.reshape(g.shape[0], -1).numpy()


def proxies(base, x, y, zen_seed, zen_alpha):
    out = {}
    fresh = lambda: copy.deepcopy(base).train()

    out["params"] = float(sum(p.numel() for p in base.parameters()))
    # Multiply-accumulates at batch 1: conv = output elements x (Cin/groups) x k x k; linear = in x out.
    macs = 4 * 8 * 8 * 3 * 9 + 6 * 4 * 4 * 4 * 9 + 6 * 3
    out["flops"] = float(macs)
    out["l2_norm"] = float(sum(w.norm() for w in base.weights()))

    net = fresh(); g = weight_gradients(net, x, y)
    out["grad_norm"] = float(sum(gi.norm() for gi in g))
    net = fresh(); g = weight_gradients(net, x, y)
    out["snip"] = float(sum((gi * w).abs().sum() for gi, w in zip(g, net.weights())))
    net = fresh(); g = weight_gradients(net, x, y)
    out["plain"] = float(sum((gi * w).sum() for gi, w in zip(g, net.weights())))

    net = fresh()
    g = weight_gradients(net, x, y, create_graph=True)
    z = sum((gi.detach() * gi).sum() for gi in g)
    hg = torch.autograd.grad(z, net.weights())
    out["grasp"] = float(-sum((w.detach() * h).sum() for w, h in zip(net.weights(), hg)))

    net = fresh(); record = []
    loss = loss_of(net, x, y, record)
    acts = [a for kind, a in record if kind == "layer"]
    grads = torch.autograd.grad(loss, acts)
    fisher = 0.0
    for a, ga in zip(acts, grads):
        prod = a.detach() * ga
        if prod.dim() > 2: prod = prod.sum(dim=tuple(range(2, prod.dim())))
        fisher += float((0.5 * prod.pow(2).mean(0)).sum())
    out["fisher"] = fisher

    net = copy.deepcopy(base).eval()
    with torch.no_grad():
        for p in net.parameters(): p.abs_()
    r = net(torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64)).sum()
    gw = torch.autograd.grad(r, net.weights())
    out["synflow"] = float(sum((w.detach() * gi).abs().sum() for w, gi in zip(net.weights(), gw)))

    j = input_jacobian(fresh(), x)
    v = np.linalg.eigvalsh(np.corrcoef(j))
    out["jacov"] = float(-np.sum(np.log(v + K) + 1.0 / (v + K)))

    labels = y.numpy()
    epe = 0.0
    for c in sorted(set(labels.tolist())):
        rows = j[labels == c]
        s = np.log(1 + K) if len(rows) == 1 else np.sum(np.log(np.abs(np.corrcoef(rows)) + K))
        epe += abs(s)
    out["epe_nas"] = float(epe)

    net = fresh(); record = []
    with torch.no_grad(): net(x, record)
    n = x.shape[0]
    kernel = np.zeros((n, n))
    for kind, a in record:
        if kind != "relu": continue
        c = (a > 0).double().reshape(n, -1).numpy()
        kernel += c @ c.T + (1 - c) @ (1 - c).T
    out["nwot"] = float(np.linalg.slogdet(kernel)[1])

    net = fresh()
    gen = torch.Generator().manual_seed(zen_seed)
    xi = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
    eps = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        d = (net.features(xi) - net.features(xi + zen_alpha * eps)).abs()
        zen = torch.log(d.sum(dim=(1, 2, 3)).mean())
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d): zen += torch.log(torch.sqrt(m.running_var.mean()))
    out["zen"] = float(zen)
    return out


def main():
    torch.manual_seed(20261125)
    net = Tiny().double()
    # Non-trivial batch-norm affine values so that its gradients matter.
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.2, 0.2)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 0])
    zen_seed, zen_alpha = 7, 0.01
    values = proxies(net, x, y, zen_seed, zen_alpha)
    state = {k: {"shape": list(v.shape), "values": v.detach().reshape(-1).tolist()} for k, v in net.state_dict().items()
             if v.dtype.is_floating_point}
    fixture = {
        "torch_version": torch.__version__,
        "state": state,
        "input": {"shape": list(x.shape), "values": x.reshape(-1).tolist()},
        "labels": y.tolist(),
        "zen_seed": zen_seed,
        "zen_mixup_scale": zen_alpha,
        "proxies": values,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxies_tiny.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1, sort_keys=True)
    for k, v in sorted(values.items()): print(f"{k:10s} {v:.12g}")


if __name__ == "__main__":
    main()
