#!/usr/bin/env python3
"""Times a .tflite model in LiteRT: a benchmark command for EdgeNAS's `command` latency backend
and for `edgenas agent --benchmark-command` on a board that runs LiteRT.

    edgenas latency measure --deployed-format tflite \
        --latency "command '.venv/bin/python scripts/benchmark_tflite.py {model} --threads {threads}'"

Runs the model on one random input of its input's shape and type, --warmup times unmeasured, then
--runs times, and prints the run times as its last line, {"samples_ms": [...]}, the form the
command backend reads. --delegate PATH loads an external delegate (e.g. the i.MX 8M Plus NPU's
/usr/lib/libvx_delegate.so); without it LiteRT's CPU kernels run (XNNPACK).
"""
import argparse
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, load_delegate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--delegate", help="an external delegate's shared library")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("--runs and --threads must be at least 1, --warmup at least 0")
    delegates = [load_delegate(args.delegate)] if args.delegate else None
    try:
        interpreter = Interpreter(model_path=args.model, num_threads=args.threads, experimental_delegates=delegates)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        sys.exit(f"{args.model}: LiteRT cannot load it: {error}")
    (source,) = interpreter.get_input_details()
    generator = np.random.default_rng(0)
    if np.issubdtype(source["dtype"], np.floating):
        image = generator.random(source["shape"], dtype=np.float32).astype(source["dtype"])
    else:
        limits = np.iinfo(source["dtype"])
        image = generator.integers(limits.min, limits.max, size=source["shape"], endpoint=True).astype(source["dtype"])
    interpreter.set_tensor(source["index"], image)
    for _ in range(args.warmup):
        interpreter.invoke()
    samples = []
    for _ in range(args.runs):
        start = time.perf_counter()
        interpreter.invoke()
        samples.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"samples_ms": [round(sample, 4) for sample in samples]}))


if __name__ == "__main__":
    main()
