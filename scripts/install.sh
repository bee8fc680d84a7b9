#!/usr/bin/env bash
# Installs what EdgeNAS needs on Debian 12, from Debian's packages alone, and builds the release
# binary .build/release/edgenas. Nothing is installed into any Python: EdgeNAS never runs Python.
#   scripts/install.sh            what running EdgeNAS needs (libtorch 1.13, OpenBLAS with OpenMP,
#                                 libjpeg-turbo, libpng, SQLite, ONNX Runtime's shared library),
#                                 then the release build
#   scripts/install.sh --deps     that, plus what the tests and the repository's check scripts need
#                                 (PostgreSQL, Chromium, python3-torch, a virtual environment
#                                 .venv with onnx/onnxruntime/numpy); no build. CI runs this
#                                 before `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

deps=false
case "${1:-}" in
    "") ;;
    --deps) deps=true ;;
    *) echo "usage: scripts/install.sh [--deps]" >&2; exit 2 ;;
esac

packages=(
    libtorch-dev libopenblas0-openmp          # tensors, autograd, INT8 kernels
    libjpeg62-turbo-dev libpng-dev pkg-config # image decoding
    libsqlite3-dev                            # GRDB links the system SQLite
    python3-pip unzip                         # `pip download` fetches ONNX Runtime's wheel (never installs it)
)
if $deps; then
    packages+=(
        postgresql                            # throwaway server for the distributed tests
        chromium                              # headless browser: the report and dashboard rendering tests
        python3-venv                          # .venv for the check scripts (scripts/python-env.sh)
        python3-torch                         # reference numbers for parity checks (tests never need it)
    )
fi

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

# ONNX Runtime: EdgeNAS dlopen()s libonnxruntime at run time (Sources/CONNXRuntime), so only the
# shared library is needed, no Python. PyPI's wheel ships it ready-built for this platform:
# Debian's pip (python3-pip, installed above) downloads the wheel, which is a zip file, and
# that one file is taken out of it. `pip download` installs nothing, so Debian's PEP 668
# protection of its Python is never in the way. /usr/bin/python3 is named so that another
# Python first on PATH (pyenv, conda) plays no part.
onnxruntime_version=1.32.0
onnxruntime_dir=/usr/local/lib/edgenas/onnxruntime
onnxruntime_lib="$onnxruntime_dir/libonnxruntime.so.$onnxruntime_version"
if [ -f "$onnxruntime_lib" ]; then
    echo "==> ONNX Runtime $onnxruntime_version already at $onnxruntime_lib"
else
    echo "==> installing ONNX Runtime $onnxruntime_version into $onnxruntime_dir"
    wheel_dir=$(mktemp -d)
    trap 'rm -rf "$wheel_dir"' EXIT
    /usr/bin/python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheel_dir" "onnxruntime==$onnxruntime_version"
    unzip -q -j "$wheel_dir"/onnxruntime-"$onnxruntime_version"-*.whl \
        "onnxruntime/capi/libonnxruntime.so.$onnxruntime_version" -d "$wheel_dir/lib"
    sudo_if_needed install -d "$onnxruntime_dir"
    sudo_if_needed install -m 0644 "$wheel_dir/lib/libonnxruntime.so.$onnxruntime_version" "$onnxruntime_lib"
fi

command -v swift >/dev/null || { echo "error: the Swift 6 toolchain is not on PATH (https://swift.org/install)" >&2; exit 1; }

if $deps; then
    # onnx, onnxruntime and numpy for scripts/check_onnx.py and scripts/reference/*.py, in a
    # virtual environment of the repository's own (never the system Python).
    scripts/python-env.sh >/dev/null
    exit 0
fi

echo "==> building release (the first build takes about 15 minutes on 2 cores)"
swift build -c release --product edgenas
echo "==> built $(pwd)/.build/release/edgenas"
echo "==> check it with: .build/release/edgenas doctor"
