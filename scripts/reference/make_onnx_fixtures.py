#!/usr/bin/env python3
"""Writes the tiny .onnx models the ONNX Runtime bridge tests run (Tests/ONNXRuntimeTests).

conv_relu_add.onnx: x [batch, 1, 3, 3] -> conv = Conv(x, W, B) with two 2x2 filters,
y = Relu(conv) + C. Outputs y and conv, both [batch, 2, 2, 2]; "batch" is symbolic. The
weights are small exact binary fractions so the tests can state the expected numbers by hand.

Needs the `onnx` and `numpy` packages (and checks the model against `onnxruntime` when it is
importable); `scripts/python-env.sh` makes a virtual environment with all three (.venv):

    $(scripts/python-env.sh) scripts/reference/make_onnx_fixtures.py [OUTPUT_DIR]

OUTPUT_DIR defaults to Tests/ONNXRuntimeTests/Fixtures. The output is deterministic: rerunning it
must leave the committed fixture unchanged (scripts/test.sh checks that, in a temporary folder).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "ONNXRuntimeTests", "Fixtures")

# Filter 0 gives x[i][j] - x[i+1][j+1], filter 1 half the sum of the 2x2 window (then bias -10).
W = np.array([[[[1.0, 0.0], [0.0, -1.0]]], [[[0.5, 0.5], [0.5, 0.5]]]], dtype=np.float32)
B = np.array([0.0, -10.0], dtype=np.float32)
C = np.array([1.0, 0.25], dtype=np.float32).reshape(1, 2, 1, 1)


def conv_relu_add():
    batch = ["batch", 1, 3, 3]
    out = ["batch", 2, 2, 2]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W", "B"], ["conv"], kernel_shape=[2, 2]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("Add", ["relu", "C"], ["y"]),
        ],
        "conv_relu_add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, batch)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out),
         helper.make_tensor_value_info("conv", TensorProto.FLOAT, out)],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B"),
                     numpy_helper.from_array(C, "C")],
    )
    # Opset 13 / IR 7 (ONNX 1.8): old enough for the ONNX Runtime builds on edge boards.
    model = helper.make_model(graph, producer_name="edgenas make_onnx_fixtures.py",
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(x):
    """Conv (valid, stride 1), Relu, Add in numpy: the numbers the model must produce."""
    n = x.shape[0]
    conv = np.zeros((n, 2, 2, 2), dtype=np.float32)
    for b in range(n):
        for k in range(2):
            for i in range(2):
                for j in range(2):
                    conv[b, k, i, j] = np.sum(x[b, 0, i:i + 2, j:j + 2] * W[k, 0]) + B[k]
    return np.maximum(conv, 0) + C, conv


def check_with_onnxruntime(path):
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime not importable; skipped the runtime check")
        return
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.stack([np.arange(1, 10, dtype=np.float32), -np.arange(1, 10, dtype=np.float32)]).reshape(2, 1, 3, 3)
    y, conv = session.run(["y", "conv"], {"x": x})
    want_y, want_conv = reference(x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(conv, want_conv)
    print("onnxruntime", onnxruntime.__version__, "matches the numpy reference:")
    print("  y    =", y.reshape(2, -1).tolist())
    print("  conv =", conv.reshape(2, -1).tolist())


def main():
    output = sys.argv[1] if len(sys.argv) > 1 else FIXTURES
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, "conv_relu_add.onnx")
    onnx.save(conv_relu_add(), path)
    print("wrote", os.path.normpath(path))
    check_with_onnxruntime(path)


if __name__ == "__main__":
    main()
