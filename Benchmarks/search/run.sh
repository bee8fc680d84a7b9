#!/usr/bin/env bash
# EdgeNAS vs Optuna sampler benchmark. From the repository root:
#
#   Benchmarks/search/run.sh            # full: 10 problems, 10 seeds, 50/100/200 trials
#   Benchmarks/search/run.sh --quick    # 5 problems, 3 seeds, 50/100 trials
#
# Extra options go to both sides (--seeds N, --samplers a,b, --problems p,q, --trials 50,100,
# --overhead 100,500,1000, --no-overhead, --no-quality). Needs optuna >= 5 with torch and
# scipy for GPSampler (PYTHON=/usr/bin/python3 on Debian, where python3-torch lives).
# Results: Benchmarks/search/results-{edgenas,optuna}.jsonl, summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
swift build -c release --product edgenas-bench-search
.build/release/edgenas-bench-search "$@"
"$PYTHON" Benchmarks/search/optuna_bench.py "$@"
"$PYTHON" Benchmarks/search/compare.py
