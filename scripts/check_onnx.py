#!/usr/bin/env python3
"""Checks the ONNX models written by `edgenas export` in onnxruntime, against EdgeNAS's own outputs.

    scripts/python-env.sh        (once: .venv with onnx, onnxruntime, numpy; scripts/install.sh --deps runs it)
    edgenas export --data DATA --checkpoint RUN --int8 --check-images 100 --output export
    .venv/bin/python scripts/check_onnx.py export/check [--json result.json]

(or any Python with `pip install onnx onnxruntime numpy`).

The bundle (export/check) holds the validation images letterboxed as the model expects, EdgeNAS's
outputs on them (libtorch FP32 and libtorch INT8), the ground truth and EdgeNAS's AP@0.5. This script:
1. runs onnx.checker (full check, with shape inference) on every model;
2. runs each model in onnxruntime (one thread, all graph optimisations, so QDQ pairs fuse into
   integer kernels) on the same inputs;
3. compares outputs: FP32 within --fp32-tolerance x (1 + |EdgeNAS|). INT8 in units of the quantization
   step of each head branch (objectness in logit space, since the output holds its sigmoid):
   onnxruntime's INT8 must agree with EdgeNAS's INT8 (libtorch on QNNPACK, export's default
   reference engine) to below --int8-steps on average (a rare rounding difference grows over the
   network's ~60 requantizations, so single values may differ by a few steps), and its own error
   against FP32 must be within --int8-error-ratio of EdgeNAS's;
4. decodes detections (FastestDet scoring, per-class NMS) and computes Pascal VOC AP@0.5 (all-point)
   for every output; first checks that this reproduces the AP EdgeNAS computed on its own outputs
   (so the comparison below tests the runtime, not two decoders), then that onnxruntime's AP differs
   from EdgeNAS's by at most --ap-tolerance for each precision.
Exits 1 when a check fails.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

from detection_check import average_precision, branch_steps, finish, fp32_close, load_floats, int8_failures


def run_onnxruntime(path, inputs):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[i:i + 1]})[0] for i in range(inputs.shape[0])])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", help="the check directory written by 'edgenas export --check-images N'")
    parser.add_argument("--fp32-tolerance", type=float, default=1e-4,
                        help="FP32: largest allowed |onnxruntime - EdgeNAS| / (1 + |EdgeNAS|)")
    parser.add_argument("--ap-tolerance", type=float, default=0.01)
    parser.add_argument("--int8-steps", type=float, default=1.0,
                        help="INT8: mean |onnxruntime - EdgeNAS INT8| per branch must be below this many quantization steps")
    parser.add_argument("--int8-error-ratio", type=float, default=1.1,
                        help="INT8: largest allowed mean |onnxruntime - FP32| / mean |EdgeNAS INT8 - FP32| per branch")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with open(os.path.join(args.bundle, "check.json")) as f:
        manifest = json.load(f)
    inputs = load_floats(os.path.join(args.bundle, manifest["inputs"]), manifest["inputShape"])
    failures, result = [], {"architecture": manifest["architecture"], "images": manifest["inputShape"][0],
                            "onnxruntime": ort.__version__, "onnx": onnx.__version__, "precisions": {}}
    print(f"{manifest['architecture']}: {inputs.shape[0]} images, onnxruntime {ort.__version__}, onnx {onnx.__version__}")

    for precision, relative in sorted(manifest["models"].items()):
        path = os.path.normpath(os.path.join(args.bundle, relative))
        onnx.checker.check_model(path, full_check=True)
        ours_run = manifest["runs"][f"edgenas-{precision}"]
        ours = load_floats(os.path.join(args.bundle, ours_run["outputs"]), manifest["outputShape"])
        theirs = run_onnxruntime(path, inputs)
        figures = {"model": path, "checker": "ok", "max_abs_diff": float(np.max(np.abs(ours - theirs)))}

        ap_ours_python = average_precision(ours, manifest)
        ap_theirs = average_precision(theirs, manifest)
        figures.update(ap_edgenas=ours_run["averagePrecision50"], ap_edgenas_recomputed=ap_ours_python, ap_onnxruntime=ap_theirs)
        if abs(ap_ours_python - ours_run["averagePrecision50"]) > 1e-6:
            failures.append(f"{precision}: this script's AP of EdgeNAS's outputs {ap_ours_python:.6f} != EdgeNAS's {ours_run['averagePrecision50']:.6f}")
        if abs(ap_theirs - ours_run["averagePrecision50"]) > args.ap_tolerance:
            failures.append(f"{precision}: onnxruntime AP@0.5 {ap_theirs:.4f} vs EdgeNAS {ours_run['averagePrecision50']:.4f} "
                            f"(tolerance {args.ap_tolerance})")

        if precision == "fp32":
            if not fp32_close(ours, theirs, args.fp32_tolerance):
                failures.append(f"fp32: |EdgeNAS - onnxruntime| up to {figures['max_abs_diff']:.3g}, beyond {args.fp32_tolerance} x (1 + |EdgeNAS|)")
            print(f"fp32: checker ok; max |EdgeNAS - onnxruntime| = {figures['max_abs_diff']:.3g} "
                  f"(tolerance {args.fp32_tolerance} x (1 + |EdgeNAS|)); "
                  f"AP@0.5 EdgeNAS {ours_run['averagePrecision50']:.4f}, onnxruntime {ap_theirs:.4f}")
        else:
            fp32 = load_floats(os.path.join(args.bundle, manifest["runs"]["edgenas-fp32"]["outputs"]), manifest["outputShape"])
            scales = manifest["int8BranchScales"]
            pairs = {"onnxruntime_vs_edgenas": (theirs, ours), "edgenas_vs_fp32": (ours, fp32), "onnxruntime_vs_fp32": (theirs, fp32)}
            summary = []
            for branch in ("objectness", "box"):
                means = branch_steps(pairs, scales, branch, figures)
                failures += int8_failures("onnxruntime", branch, means["onnxruntime_vs_edgenas"], means["edgenas_vs_fp32"],
                                          means["onnxruntime_vs_fp32"], args.int8_steps, args.int8_error_ratio, manifest.get("int8Engine"))
                summary.append(f"{branch} onnxruntime-EdgeNAS {means['onnxruntime_vs_edgenas']:.2f}, EdgeNAS-FP32 "
                               f"{means['edgenas_vs_fp32']:.2f}, onnxruntime-FP32 {means['onnxruntime_vs_fp32']:.2f}")
            print(f"int8: checker ok; mean differences in quantization steps: {'; '.join(summary)}; "
                  f"AP@0.5 EdgeNAS {ours_run['averagePrecision50']:.4f}, onnxruntime {ap_theirs:.4f}")
        result["precisions"][precision] = figures

    return finish(result, failures, args.json)

if __name__ == "__main__":
    sys.exit(main())
