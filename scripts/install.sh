#!/usr/bin/env bash
# Installs what EdgeNAS needs on Debian 12 (libtorch 1.13, OpenBLAS with OpenMP, libjpeg-turbo,
# libpng, PostgreSQL for the distributed-mode tests, python3-torch for the parity references)
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

command -v swift >/dev/null || { echo "error: the Swift 6 toolchain is not on PATH (https://swift.org/install)" >&2; exit 1; }

if [ "${1:-}" = "--deps" ]; then exit 0; fi

echo "==> building release (first build takes several minutes)"
swift build -c release --product edgenas
echo "==> built $(pwd)/.build/release/edgenas"
