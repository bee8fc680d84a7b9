#!/usr/bin/env bash
# Creates (once) the virtual environment the repository's Python check scripts run in, and prints
# its interpreter's path. EdgeNAS itself never runs Python; scripts/check_onnx.py,
# scripts/check_tflite.py and scripts/reference/make_onnx_fixtures.py need onnx, onnxruntime,
# ai-edge-litert (LiteRT) and numpy, pinned in
# scripts/requirements-check.txt. They go into this environment, never into the system Python
# (Debian 12 refuses that anyway: PEP 668, "externally-managed-environment").
#   scripts/python-env.sh              -> /path/to/repo/.venv/bin/python (EDGENAS_VENV overrides the folder)
#   $(scripts/python-env.sh) scripts/check_onnx.py export/check
# Needs python3-venv (scripts/install.sh --deps installs it). The scripts that compare against
# PyTorch (scripts/torch_reference.py, ...) run in Debian's /usr/bin/python3 with python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${EDGENAS_VENV:-.venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
requirements=scripts/requirements-check.txt
# Debian's interpreter unless told otherwise: what a stock Debian 12 has.
base_python="${EDGENAS_VENV_PYTHON:-/usr/bin/python3}"
[ -x "$base_python" ] || base_python=$(command -v python3)

# Rebuilt when the pinned versions change; the stamp is the requirements file as installed.
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/edgenas-requirements.txt"; then
    echo "$venv/bin/python"
    exit 0
fi

echo "==> creating $venv with $base_python ($("$base_python" --version 2>&1)) for $requirements" >&2
rm -rf "$venv"
"$base_python" -m venv "$venv" >&2 || {
    echo "error: could not create $venv; on Debian install python3-venv (scripts/install.sh --deps)" >&2
    exit 1
}
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$requirements" >&2
cp "$requirements" "$venv/edgenas-requirements.txt"
echo "$venv/bin/python"
