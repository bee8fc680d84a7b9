#!/usr/bin/env bash
# Makes the Python venv for the Optuna side of the search benchmark (optuna_bench.py):
# Optuna 5 with torch >= 2, scipy and greenlet so that GPSampler runs (Debian's python3-torch is
# 1.13, too old for it; without greenlet Optuna's GP falls back to a slower sequential L-BFGS-B).
#
#   Benchmarks/search/setup-optuna.sh [VENV]      # default /tmp/optuna-venv, outside the repo
#   PYTHON=/tmp/optuna-venv/bin/python Benchmarks/search/run.sh
#
# BASE_PYTHON picks the interpreter (default: python3.11 if found, else python3). TORCH_SPEC picks
# the torch requirement (default 'torch>=2,<3'; PyPI's Linux wheel pulls the nvidia-* CUDA
# packages, about 5.6 GB in all; a CPU-only wheel, e.g. from a local --find-links folder, is
# enough: the benchmark runs torch on the CPU with one thread).
set -euo pipefail
VENV="${1:-/tmp/optuna-venv}"
if [[ -z "${BASE_PYTHON:-}" ]]; then
    BASE_PYTHON="$(command -v python3.11 || command -v python3)"
fi
TORCH_SPEC="${TORCH_SPEC:-torch>=2,<3}"
"$BASE_PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install "optuna>=5,<6" scipy numpy greenlet "$TORCH_SPEC"
"$VENV/bin/python" - <<'PY'
import optuna, scipy, torch
optuna.logging.set_verbosity(optuna.logging.WARNING)
print(f"optuna {optuna.__version__}, torch {torch.__version__}, scipy {scipy.__version__}")
study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.GPSampler(seed=0))
study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1) * t.params["x"]), n_trials=12)
print(f"GPSampler ran {len(study.trials)} trials")
PY
