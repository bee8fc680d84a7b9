#!/usr/bin/python3
"""Reference predictions from PyTorch for the Swift MultilayerPerceptron.

Run from the repository root with Debian's python3-torch (needs torch and numpy, no scikit-learn):
    /usr/bin/python3 Benchmarks/estimation/crosscheck_torch_mlp.py
Writes Tests/EstimationTests/Fixtures/mlp_crosscheck.json, read by PredictorCrosscheckTests.

scikit-learn's MLPRegressor cannot be the reference: it draws its own initial weights, its Adam
adds epsilon to the uncorrected sqrt(v), and its L2 term is divided by the batch size. torch.optim.Adam
computes lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), the Swift update, and
its weight_decay is the same coupled L2 term (added to the gradient), here on the weights only.

Everything else follows MultilayerPerceptron.fit, so the same seed gives the same run:
  - inputs standardised per column (population sd; a constant column is scaled by 1), targets too;
  - layer l's weights (out x in, row-major) are SplitMix64 Box-Muller normals * sqrt(2 / in),
    drawn layer after layer from the model's seed, biases zero;
  - each epoch draws a Fisher-Yates permutation from the same generator and takes consecutive
    mini-batches of it (the last may be smaller); loss = mean over the batch of (f - y)^2 / 2.
SplitMix64 is re-implemented below from Sources/Randomness/SplitMix64.swift (integer arithmetic,
then glibc's log and cos, which Swift's Foundation also calls), so its draws are bit-identical.
The training runs in float64.
"""
import json
import math
import os

import numpy as np
import torch

MASK64 = (1 << 64) - 1


class SplitMix64:
    """Sources/Randomness/SplitMix64.swift: next, nextUnit, nextGaussian, nextIndex, permutation."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) * 2.0 ** -53

    def gaussian(self):
        u1 = self.unit()
        while u1 <= 0:
            u1 = self.unit()
        u2 = self.unit()
        return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)

    def index_below(self, bound):
        return (self.next() * bound) >> 64

    def permutation(self, count):
        values = list(range(count))
        for i in range(count - 1, 0, -1):
            j = self.index_below(i + 1)
            values[i], values[j] = values[j], values[i]
        return values


def standardise(columns):
    mean = columns.mean(axis=0)
    sd = np.sqrt(((columns - mean) ** 2).mean(axis=0))
    return mean, np.where(sd > 0, sd, 1.0)


def train_mlp(x, y, test_x, hidden, epochs, batch_size, learning_rate, weight_decay, seed):
    x_mean, x_scale = standardise(x)
    y_mean, y_scale = standardise(y[:, None])
    xs = torch.tensor((x - x_mean) / x_scale)
    ys = torch.tensor((y - y_mean[0]) / y_scale[0])
    rng = SplitMix64(seed)
    sizes = [x.shape[1]] + hidden + [1]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layer = torch.nn.Linear(fan_in, fan_out)
        scale = math.sqrt(2.0 / fan_in)
        initial = [rng.gaussian() * scale for _ in range(fan_in * fan_out)]
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(initial).reshape(fan_out, fan_in))
            layer.bias.zero_()
        layers.append(layer)
    network = torch.nn.Sequential(*[m for layer in layers[:-1] for m in (layer, torch.nn.ReLU())], layers[-1])
    optimiser = torch.optim.Adam(
        [{"params": [l.weight for l in layers], "weight_decay": weight_decay},
         {"params": [l.bias for l in layers], "weight_decay": 0.0}],
        lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order), batch_size):
            batch = torch.tensor(order[start:start + batch_size])
            optimiser.zero_grad()
            loss = 0.5 * ((network(xs[batch]).squeeze(1) - ys[batch]) ** 2).mean()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        out = network(torch.tensor((test_x - x_mean) / x_scale)).squeeze(1).numpy()
    return out * y_scale[0] + y_mean[0]


def main():
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(11)
    n_train, n_test = 40, 15
    x = rng.uniform(-2, 2, size=(n_train + n_test, 5))
    y = 1.5 * x[:, 0] - 2 * x[:, 1] * x[:, 2] + np.sin(2 * x[:, 3]) + 0.2 * rng.normal(size=n_train + n_test)
    # A constant column exercises the standardiser's scale-1 rule (it stays at zero).
    x = np.hstack([x, np.full((n_train + n_test, 1), 3.0)])
    out = {"generator": "Benchmarks/estimation/crosscheck_torch_mlp.py", "torch_version": torch.__version__,
           "train_x": x[:n_train].tolist(), "train_y": y[:n_train].tolist(), "test_x": x[n_train:].tolist(), "cases": []}
    # One and two hidden layers; batch 16 of 40 rows leaves a last batch of 8 each epoch.
    cases = [dict(hidden=[8], epochs=60, batch_size=8, learning_rate=1e-2, weight_decay=1e-3, seed=3),
             dict(hidden=[12, 6], epochs=40, batch_size=16, learning_rate=3e-3, weight_decay=1e-2, seed=11),
             dict(hidden=[64], epochs=500, batch_size=8, learning_rate=3e-3, weight_decay=1e-2, seed=0)]
    for case in cases:
        predictions = train_mlp(x[:n_train], y[:n_train], x[n_train:], **case)
        out["cases"].append({**case, "predictions": predictions.tolist()})
    path = os.path.join("Tests", "EstimationTests", "Fixtures", "mlp_crosscheck.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
