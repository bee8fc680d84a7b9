#!/usr/bin/env bash
# Regenerates Sources/ONNXExport/Generated/onnx-subset.pb.swift from scripts/onnx/onnx-subset.proto.
# Run it after changing the .proto; the generated file is committed, so builds never need protoc.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from the swift-protobuf
# version Package.swift resolves:
#   git clone https://github.com/apple/swift-protobuf /tmp/swift-protobuf && cd /tmp/swift-protobuf
#   git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf/.build/release/protoc-gen-swift scripts/onnx/generate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
[ -x "$plugin" ] || { echo "error: set PROTOC_GEN_SWIFT to a protoc-gen-swift binary (see this script's header)" >&2; exit 1; }
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=scripts/onnx \
    --swift_opt=Visibility=Public --swift_out=Sources/ONNXExport/Generated onnx-subset.proto
echo "wrote Sources/ONNXExport/Generated/onnx-subset.pb.swift"
