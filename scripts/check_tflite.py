#!/usr/bin/env python3
"""Checks the TFLite models written by `edgenas export --to tflite` in LiteRT, against EdgeNAS's outputs.

    scripts/python-env.sh        (once: .venv with ai-edge-litert, onnxruntime, numpy)
    edgenas export --data DATA --checkpoint RUN --to onnx,tflite --int8 --check-images 100 --output export
    .venv/bin/python scripts/check_tflite.py export/check [--json result.json]

The bundle (export/check, as for scripts/check_onnx.py) holds letterboxed validation images, EdgeNAS's
outputs on them (libtorch FP32 and libtorch INT8), the ground truth and EdgeNAS's AP@0.5. This script:
1. loads each .tflite model in LiteRT's interpreter and checks its structure: one float input
   [1, H, W, 3] and one float output [1, rows, columns, 5 + classes]; in the INT8 model every convolution's
   input, filter and output are int8 and its filter quantized per output channel (or per tensor,
   with --per-tensor) with zero point 0,
   its bias int32 with scale input scale x filter scale (the structure Vela and NPU delegates need);
2. runs it (one thread) on the bundle's images, channels last, and moves the output's channels first;
3. FP32: every output within --fp32-tolerance of EdgeNAS's, absolute plus relative (float sums in
   another order). INT8, per head branch in quantization steps (objectness in logit space), as
   scripts/check_onnx.py judges onnxruntime: LiteRT must agree with EdgeNAS's INT8 (libtorch on
   QNNPACK) to below --int8-steps on average, and its own error against FP32 must be within
   --int8-error-ratio of EdgeNAS's. The mean difference to EdgeNAS's INT8 and (when the bundle
   has the ONNX model) to onnxruntime's are reported;
4. AP@0.5 (FastestDet decoding, Pascal VOC) within --ap-tolerance of EdgeNAS's, and, when the bundle
   has the ONNX model of the same precision, of onnxruntime's on that model.
Exits 1 when a check fails.
"""
import argparse
import json
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from check_onnx import run_onnxruntime
from detection_check import average_precision, branch_steps, finish, fp32_close, load_floats, int8_failures

CONVOLUTIONS = {"CONV_2D", "DEPTHWISE_CONV_2D"}


def structure_failures(interpreter, precision, manifest):
    """What is wrong with the model's inputs, outputs and (INT8) convolution quantization."""
    failures = []
    height, width = manifest["inputShape"][-2:]
    channels, rows, columns = manifest["outputShape"][1:]
    (image,), (output,) = interpreter.get_input_details(), interpreter.get_output_details()
    if list(image["shape"]) != [1, height, width, 3] or image["dtype"] != np.float32:
        failures.append(f"{precision}: input {image['shape']} {image['dtype']}, expected float32 [1, {height}, {width}, 3]")
    if list(output["shape"]) != [1, rows, columns, channels] or output["dtype"] != np.float32:
        failures.append(f"{precision}: output {output['shape']} {output['dtype']}, expected float32 [1, {rows}, {columns}, {channels}]")
    if precision != "int8":
        return failures
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convolutions = [op for op in interpreter._get_ops_details() if op["op_name"] in CONVOLUTIONS]
    for op in convolutions:
        source, weight, bias = (tensors[i] for i in op["inputs"])
        result = tensors[op["outputs"][0]]
        name = result["name"]
        if not (source["dtype"] == weight["dtype"] == result["dtype"] == np.int8 and bias["dtype"] == np.int32):
            failures.append(f"int8 {name}: types {source['dtype']}, {weight['dtype']}, {bias['dtype']} -> {result['dtype']}")
            continue
        weight_q, bias_q = weight["quantization_parameters"], bias["quantization_parameters"]
        expected_dimension = 3 if op["op_name"] == "DEPTHWISE_CONV_2D" else 0
        per_channel = len(weight_q["scales"]) == weight["shape"][expected_dimension] and weight_q["quantized_dimension"] == expected_dimension
        if not per_channel and len(weight_q["scales"]) != 1:  # per tensor (export --per-tensor): one scale
            failures.append(f"int8 {name}: filter quantized neither per output channel nor per tensor")
        if np.any(weight_q["zero_points"] != 0):
            failures.append(f"int8 {name}: filter zero points not 0")
        input_scale = source["quantization_parameters"]["scales"][0]
        if not np.allclose(bias_q["scales"], input_scale * weight_q["scales"], rtol=1e-6):
            failures.append(f"int8 {name}: bias scale is not input scale x filter scale")
    if not convolutions:
        failures.append("int8: no convolution found")
    return failures


def run_litert(path, inputs):
    """Outputs [N, C, rows, columns] of the model on inputs [N, 3, H, W], run one image at a time."""
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    (image,), (output,) = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    for i in range(inputs.shape[0]):
        interpreter.set_tensor(image["index"], np.ascontiguousarray(inputs[i:i + 1].transpose(0, 2, 3, 1)))
        interpreter.invoke()
        results.append(interpreter.get_tensor(output["index"]).transpose(0, 3, 1, 2))
    return np.concatenate(results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", help="the check directory written by 'edgenas export --to tflite --check-images N'")
    parser.add_argument("--fp32-tolerance", type=float, default=1e-4,
                        help="FP32: largest allowed |LiteRT - EdgeNAS| / (1 + |EdgeNAS|)")
    parser.add_argument("--int8-steps", type=float, default=1.0,
                        help="INT8: mean |LiteRT - EdgeNAS INT8| per branch must be below this many quantization steps")
    parser.add_argument("--int8-error-ratio", type=float, default=1.1,
                        help="INT8: largest allowed mean |LiteRT - FP32| / mean |EdgeNAS INT8 - FP32| per branch")
    parser.add_argument("--ap-tolerance", type=float, default=0.01)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with open(os.path.join(args.bundle, "check.json")) as f:
        manifest = json.load(f)
    models = manifest.get("tfliteModels") or {}
    if not models:
        print(f"FAIL: {args.bundle} has no TFLite model (export with --to tflite)")
        return 1
    inputs = load_floats(os.path.join(args.bundle, manifest["inputs"]), manifest["inputShape"])
    failures, result = [], {"architecture": manifest["architecture"], "images": manifest["inputShape"][0], "precisions": {}}
    print(f"{manifest['architecture']}: {inputs.shape[0]} images, LiteRT")

    for precision, relative in sorted(models.items()):
        path = os.path.normpath(os.path.join(args.bundle, relative))
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        problems = structure_failures(interpreter, precision, manifest)
        failures += problems
        ours_run = manifest["runs"][f"edgenas-{precision}"]
        ours = load_floats(os.path.join(args.bundle, ours_run["outputs"]), manifest["outputShape"])
        theirs = run_litert(path, inputs)
        ap_theirs = average_precision(theirs, manifest)
        figures = {"model": path, "operators": sorted({op["op_name"] for op in interpreter._get_ops_details()}),
                   "structure": "ok" if not problems else problems, "max_abs_diff": float(np.max(np.abs(ours - theirs))),
                   "ap_edgenas": ours_run["averagePrecision50"], "ap_litert": ap_theirs}
        if abs(ap_theirs - ours_run["averagePrecision50"]) > args.ap_tolerance:
            failures.append(f"{precision}: LiteRT AP@0.5 {ap_theirs:.4f} vs EdgeNAS {ours_run['averagePrecision50']:.4f} "
                            f"(tolerance {args.ap_tolerance})")
        onnx_model = manifest.get("models", {}).get(precision)
        onnxruntime_outputs = None
        if onnx_model:
            onnxruntime_outputs = run_onnxruntime(os.path.normpath(os.path.join(args.bundle, onnx_model)), inputs)
            ap_onnx = average_precision(onnxruntime_outputs, manifest)
            figures["ap_onnxruntime"] = ap_onnx
            if abs(ap_theirs - ap_onnx) > args.ap_tolerance:
                failures.append(f"{precision}: LiteRT AP@0.5 {ap_theirs:.4f} vs onnxruntime {ap_onnx:.4f} (tolerance {args.ap_tolerance})")
        ap_text = f"AP@0.5 EdgeNAS {ours_run['averagePrecision50']:.4f}, LiteRT {ap_theirs:.4f}" + (
            f", onnxruntime {figures['ap_onnxruntime']:.4f}" if "ap_onnxruntime" in figures else "")

        if precision == "fp32":
            if not fp32_close(ours, theirs, args.fp32_tolerance):
                failures.append(f"fp32: |EdgeNAS - LiteRT| up to {figures['max_abs_diff']:.3g}, beyond {args.fp32_tolerance} x (1 + |EdgeNAS|)")
            print(f"fp32: max |EdgeNAS - LiteRT| = {figures['max_abs_diff']:.3g} (tolerance {args.fp32_tolerance} x (1 + |EdgeNAS|)); "
                  f"{ap_text}")
        else:
            scales = manifest["int8BranchScales"]
            fp32 = load_floats(os.path.join(args.bundle, manifest["runs"]["edgenas-fp32"]["outputs"]), manifest["outputShape"])
            pairs = {"litert_vs_edgenas": (theirs, ours), "edgenas_vs_fp32": (ours, fp32), "litert_vs_fp32": (theirs, fp32)}
            if onnxruntime_outputs is not None:
                pairs["litert_vs_onnxruntime"] = (theirs, onnxruntime_outputs)
                pairs["onnxruntime_vs_edgenas"] = (onnxruntime_outputs, ours)
            summary = []
            for branch in ("objectness", "box"):
                means = branch_steps(pairs, scales, branch, figures)
                failures += int8_failures("LiteRT", branch, means["litert_vs_edgenas"], means["edgenas_vs_fp32"],
                                          means["litert_vs_fp32"], args.int8_steps, args.int8_error_ratio, manifest.get("int8Engine"))
                summary.append(f"{branch} " + ", ".join(f"{pair.replace('_vs_', '-')} {mean:.2f}" for pair, mean in means.items()))
            print(f"int8: mean differences in quantization steps: {'; '.join(summary)}; {ap_text}")
        result["precisions"][precision] = figures

    return finish(result, failures, args.json)

if __name__ == "__main__":
    sys.exit(main())
