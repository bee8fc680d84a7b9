#!/usr/bin/env bash
# Installs what EdgeNAS needs on Debian 12 (libtorch 1.13, OpenBLAS with OpenMP, libjpeg-turbo,
# libpng, PostgreSQL for the distributed-mode tests, python3-torch for the parity references,
# the ONNX Runtime shared library for the ONNX latency backend, and onnx/onnxruntime/numpy for
# the `python3` first on PATH so the reference scripts can build and check .onnx fixtures)
# and builds the release binary .build/release/edgenas.
#   scripts/install.sh            install packages + build release
#   scripts/install.sh --deps     install packages only (what CI needs before `scripts/test.sh`)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    libtorch-dev libopenblas0-openmp          # tensors, autograd, INT8 kernels
    libjpeg62-turbo-dev libpng-dev pkg-config # image decoding
    chromium                                  # headless browser: the report and dashboard rendering tests
    libsqlite3-dev                            # GRDB links the system SQLite
    postgresql                                # throwaway server for the distributed tests
    python3-torch                             # reference numbers for parity checks (tests never need it)
    unzip                                     # unpacks libonnxruntime from its wheel
)

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    sudo_if_needed apt-get update
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "==> system packages already installed"
fi

# ONNX Runtime: EdgeNAS dlopen()s libonnxruntime at run time (Sources/COnnxRuntime), so only the
# shared library is needed, no Python. PyPI's wheel ships it ready-built for this platform;
# take that one file out of the wheel.
onnxruntime_version=1.32.0
onnxruntime_dir=/usr/local/lib/edgenas/onnxruntime
onnxruntime_lib="$onnxruntime_dir/libonnxruntime.so.$onnxruntime_version"
if [ -f "$onnxruntime_lib" ]; then
    echo "==> ONNX Runtime $onnxruntime_version already at $onnxruntime_lib"
else
    echo "==> installing ONNX Runtime $onnxruntime_version into $onnxruntime_dir"
    wheel_dir=$(mktemp -d)
    trap 'rm -rf "$wheel_dir"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheel_dir" "onnxruntime==$onnxruntime_version"
    unzip -q -j "$wheel_dir"/onnxruntime-"$onnxruntime_version"-*.whl \
        "onnxruntime/capi/libonnxruntime.so.$onnxruntime_version" -d "$wheel_dir/lib"
    sudo_if_needed install -d "$onnxruntime_dir"
    sudo_if_needed install -m 0644 "$wheel_dir/lib/libonnxruntime.so.$onnxruntime_version" "$onnxruntime_lib"
fi

# Python packages for the repository's check scripts (scripts/reference/make_onnx_fixtures.py);
# installed for the `python3` first on PATH (pyenv), never needed by EdgeNAS itself.
if python3 -c 'import onnx, onnxruntime, numpy' 2>/dev/null; then
    echo "==> onnx, onnxruntime, numpy already importable by $(command -v python3)"
else
    echo "==> installing onnx, onnxruntime $onnxruntime_version, numpy for $(command -v python3)"
    python3 -m pip install --quiet onnx "onnxruntime==$onnxruntime_version" numpy
fi

command -v swift >/dev/null || { echo "error: the Swift 6 toolchain is not on PATH (https://swift.org/install)" >&2; exit 1; }

if [ "${1:-}" = "--deps" ]; then exit 0; fi

echo "==> building release (first build takes several minutes)"
swift build -c release --product edgenas
echo "==> built $(pwd)/.build/release/edgenas"
