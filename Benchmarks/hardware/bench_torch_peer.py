#!/usr/bin/python3
"""python3-torch peer of edgenas-bench-hardware: single-thread batch-1 latency of a detector in
eager FP32 and FX-quantized INT8 (PyTorch 1.13, same quantized engine).

The network is built from the layer graph EdgeNAS writes (`edgenas-bench-hardware graph NAME`), so
both sides run the same layers. INT8: FX post-training quantization with the engine's default
qconfig (per-channel symmetric qint8 weights, quint8 activations), conv+BN+ReLU fused, calibrated
on random images; the detection output (sigmoid, softmax) runs in float on the dequantized
branches, as in EdgeNAS's QuantizedDetector. Timing follows EdgeNAS's harness: warm-up, then
repeat until the median moves by less than 1 % between checks (every 10 runs from 20 on),
at most 500 runs or 20 s.

Usage: /usr/bin/python3 Benchmarks/hardware/bench_torch_peer.py GRAPH.json [--engine onednn] [--threads 1]
Prints one line per precision: name=... precision=... median_ms=... iqr_ms=... runs=...
"""
import argparse
import json

import torch
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from timing import measure


def unwrap(value):
    """Swift's Codable writes an enum case with one unlabeled value as {"case": {"_0": value}}."""
    return value["_0"] if isinstance(value, dict) and "_0" in value else value


class GraphDetector(nn.Module):
    """Runs the EdgeNAS layer graph up to the three head branches (objectness, box, class)."""

    def __init__(self, graph):
        super().__init__()
        self.nodes = graph["nodes"]
        self.convs = nn.ModuleDict()
        for node in self.nodes:
            kind, value = next(iter(node["operation"].items()))
            if kind == "convolution":
                spec = unwrap(value)
                layers = [nn.Conv2d(spec["inputChannels"], spec["outputChannels"], spec["kernelSize"], spec["stride"],
                                    spec["kernelSize"] // 2, groups=spec["groups"], bias=False),
                          nn.BatchNorm2d(spec["outputChannels"])]
                if spec["relu"]:
                    layers.append(nn.ReLU(inplace=True))
                self.convs[node["name"].replace(".", "_")] = nn.Sequential(*layers)
        self.output_inputs = self.nodes[-1]["inputs"]

    def forward(self, image):
        values = {"image": image}
        for node in self.nodes[:-1]:
            kind, value = next(iter(node["operation"].items()))
            inputs = [values[name] for name in node["inputs"]]
            x = inputs[0]
            if kind == "convolution":
                y = self.convs[node["name"].replace(".", "_")](x)
            elif kind == "maxPool":
                y = nn.functional.max_pool2d(x, value["kernel"], value["stride"], value["padding"])
            elif kind == "averagePool":
                y = nn.functional.avg_pool2d(x, value["kernel"], value["stride"], value["padding"])
            elif kind == "upsampleNearest":
                y = nn.functional.interpolate(x, scale_factor=value["scale"], mode="nearest")
            elif kind == "concatenate":
                y = torch.cat(inputs, 1)
            elif kind == "add":
                y = inputs[0] + inputs[1]
                if value["relu"]:
                    y = torch.relu(y)
            elif kind == "channelSlice":
                y = x[:, value["start"]:value["start"] + value["count"]]
            elif kind == "channelShuffle":
                # Shapes from the graph, not x.shape: FX tracing cannot unpack a traced shape.
                groups, shape = value["groups"], node["outputShape"]
                channels, height, width = shape["channels"], shape["height"], shape["width"]
                y = x.reshape(-1, groups, channels // groups, height, width).transpose(1, 2).contiguous()
                y = y.reshape(-1, channels, height, width)
            else:
                raise ValueError(f"unknown operation {kind}")
            values[node["name"]] = y
        return tuple(values[name] for name in self.output_inputs)


class WithOutput(nn.Module):
    """The detection output in float: sigmoid objectness, box as is, softmax class scores."""

    def __init__(self, branches):
        super().__init__()
        self.branches = branches

    def forward(self, image):
        objectness, box, classes = self.branches(image)
        return torch.cat([objectness.sigmoid(), box, classes.softmax(1)], 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("graph")
    parser.add_argument("--engine", default="onednn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calibration-images", type=int, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    torch.backends.quantized.engine = options.engine
    torch.manual_seed(0)
    with open(options.graph) as file:
        graph = json.load(file)
    side = graph["architecture"]["inputSize"]
    name = graph["architecture"]["name"]
    image = torch.rand(1, 3, side, side)

    fp32 = WithOutput(GraphDetector(graph)).eval()
    branches = GraphDetector(graph).eval()
    prepared = prepare_fx(branches, get_default_qconfig_mapping(options.engine), example_inputs=(image,))
    with torch.no_grad():
        for _ in range(options.calibration_images):
            prepared(torch.rand(1, 3, side, side))
    int8 = WithOutput(convert_fx(prepared)).eval()

    with torch.no_grad():
        for precision, model in [("fp32", fp32), ("int8", int8)]:
            median, iqr, runs = measure(lambda: model(image))
            print(f"name={name} precision={precision} engine={options.engine} median_ms={median:.4f} iqr_ms={iqr:.4f} runs={runs}",
                  flush=True)


if __name__ == "__main__":
    main()
