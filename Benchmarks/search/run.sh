#!/usr/bin/env bash
# EdgeNAS vs Optuna sampler benchmark. From the repository root:
#
#   Benchmarks/search/run.sh            # full: 10 problems, 10 seeds, 50/100/200 trials
#   Benchmarks/search/run.sh --quick    # 5 problems, 3 seeds, 50/100 trials
#
# Extra options go to both sides (--seeds N, --samplers a,b, --problems p,q, --trials 50,100,
# --overhead 100,500,1000, --repeats N, --no-overhead, --no-quality). The Optuna side needs
# optuna >= 5 with torch >= 2, scipy and greenlet for GPSampler; Debian's python3-torch (1.13) is
# too old, so make a venv once with
#
#   Benchmarks/search/setup-optuna.sh               # -> /tmp/optuna-venv (outside the repo)
#
# and run.sh uses it (PYTHON=... picks another interpreter). optuna_bench.py runs torch, OpenMP
# and BLAS on one thread, as EdgeNAS's samplers run, so overhead compares one core with one core.
# Results: Benchmarks/search/results-{edgenas,optuna}.jsonl, summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x /tmp/optuna-venv/bin/python ]]; then PYTHON=/tmp/optuna-venv/bin/python; else PYTHON=python3; fi
fi
swift build -c release --product edgenas-bench-search
.build/release/edgenas-bench-search "$@"
"$PYTHON" Benchmarks/search/optuna_bench.py "$@"
"$PYTHON" Benchmarks/search/compare.py
