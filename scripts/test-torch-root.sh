#!/usr/bin/env bash
# Builds the package against a second libtorch through TORCH_ROOT (README: "Using another
# libtorch") and runs the Torch tests on it, with Debian's libtorch installed too: the build must
# link and load the TORCH_ROOT one only (it once picked Debian's, through the -L that pkg-config
# adds for libjpeg/libpng). The second libtorch is the torch/ folder of PyPI's CPU wheel, the
# route for users with a GPU (the default wheel's libtorch is CUDA's, same layout).
#   scripts/test-torch-root.sh                     torch 2.13.0+cpu, build in .build-torch-alt
#   EDGENAS_TORCH_WHEEL=2.14.1+cpu scripts/test-torch-root.sh
#   EDGENAS_TORCH_ROOT_BUILD_PATH=.build ...       reuse the debug build of scripts/test.sh (CI)
# Cost on 2 cores: a 183 MiB download, 0.5 GiB unpacked (.build-torch-alt/libtorch-*), and a
# debug build of the package with its tests against it (the test product links every test
# target): about 16 CPU-minutes in a folder of its own; in .build after scripts/test.sh only the
# C++ shim is recompiled and the binaries relinked (1m34s), leaving .build linked to this libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${EDGENAS_TORCH_WHEEL:-2.13.0+cpu}"
build_path="${EDGENAS_TORCH_ROOT_BUILD_PATH:-.build-torch-alt}"
root_parent="$PWD/.build-torch-alt/libtorch-$version"
torch_root="$root_parent/torch"

if ! dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed"; then
    echo "warning: Debian's libtorch-dev is not installed, so this run cannot show that TORCH_ROOT wins over it" >&2
fi

if [ ! -f "$torch_root/lib/libtorch_cpu.so" ]; then
    echo "==> fetching libtorch from PyPI's torch $version wheel"
    wheel_dir=$(mktemp -d)
    trap 'rm -rf "$wheel_dir"' EXIT
    # `pip download` installs nothing. PyPI proper carries no "+cpu" builds; pip's configured
    # index or find-links may (this project's machines have one), else PyTorch's CPU index does.
    download=(/usr/bin/python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheel_dir")
    "${download[@]}" "torch==$version" 2>/dev/null \
        || "${download[@]}" --index-url https://download.pytorch.org/whl/cpu "torch==$version"
    rm -rf "$root_parent" && mkdir -p "$root_parent"
    unzip -q "$wheel_dir"/torch-*.whl 'torch/include/*' 'torch/lib/*' -d "$root_parent"
    rm -rf "$wheel_dir"
fi
echo "==> TORCH_ROOT=$torch_root"

echo "==> building the package and its tests against it in $build_path"
TORCH_ROOT="$torch_root" swift build --build-path "$build_path" --build-tests

bundle="$build_path/debug/EdgeNASPackageTests.xctest"
loaded=$(ldd "$bundle" | grep -E 'lib(torch|torch_cpu|c10)\.so' || true)
echo "==> libtorch libraries the test binary loads:"
echo "$loaded"
if ! grep -q "$torch_root/lib/libtorch_cpu.so" <<<"$loaded" || grep -v -q "$torch_root/lib/" <<<"$loaded"; then
    echo "error: $bundle must load libtorch, libtorch_cpu and libc10 from $torch_root/lib only" >&2
    exit 1
fi

export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
EDGENAS_EXPECTED_TORCH_VERSION="${version%%+*}" EDGENAS_EXPECTED_TORCH_LIBRARY_DIR="$torch_root/lib" \
    swift test --skip-build --build-path "$build_path" --filter TorchTests
