#!/usr/bin/env python3
"""onnxruntime-from-Python peer of EdgeNAS's onnxruntime backend: batch-1 latency of one .onnx
file (written by `edgenas-bench-hardware onnx NAME DIR`, the model the backend runs) with the same
session settings (one intra-op and one inter-op thread, sequential execution, all graph
optimisations, no spinning) and the same timing rule (timing.py).

Usage: python3 Benchmarks/hardware/bench_onnxruntime_peer.py MODEL.onnx NAME PRECISION [--threads 1]
Prints: name=... precision=... engine=onnxruntime-python median_ms=... iqr_ms=... runs=...
"""
import argparse

import numpy as np
import onnxruntime as ort

from timing import measure


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("name")
    parser.add_argument("precision")
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    settings = ort.SessionOptions()
    settings.intra_op_num_threads = options.threads
    settings.inter_op_num_threads = 1
    settings.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    settings.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(options.model, settings, providers=["CPUExecutionProvider"])
    shape = [1 if isinstance(d, str) or d is None else d for d in session.get_inputs()[0].shape]
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    feed = {session.get_inputs()[0].name: image}
    median, iqr, runs = measure(lambda: session.run(None, feed))
    print(f"name={options.name} precision={options.precision} engine=onnxruntime-python median_ms={median:.4f} iqr_ms={iqr:.4f} "
          f"runs={runs}", flush=True)


if __name__ == "__main__":
    main()
