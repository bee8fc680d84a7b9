// swift-tools-version:6.0
// EdgeNAS: hardware-aware neural architecture search for edge detectors.
//
// Targets, lowest first (dependencies point one way, see docs/architecture.md):
//   CTorch (C header over libtorch) -> Torch (safe Swift tensors)
//   Search (spaces, studies, samplers, Pareto; knows nothing of torch)
//   Storage (SQLite, PostgreSQL study storage)
//   DetectionData (datasets, image codecs, synthetic data, AP metrics; no torch)
//   Vision (detector models, losses, training) -> Estimation -> ... -> edgenas (CLI)
import Foundation
import PackageDescription

// libtorch location. Debian's libtorch-dev puts headers under /usr/include and libraries on
// the default linker path; TORCH_ROOT points at another libtorch (for example an unpacked
// official release, or the torch/ folder of PyPI's wheel: TORCH_ROOT/include, TORCH_ROOT/lib).
// With TORCH_ROOT the three libraries are linked by their full path, not with -ltorch: the
// -L/usr/lib/x86_64-linux-gnu that pkg-config adds for libjpeg/libpng comes before any
// -L$TORCH_ROOT/lib on the link line, so -ltorch would pick Debian's libtorch when it is
// installed too (scripts/test-torch-root.sh checks this). The rpath makes the loader find the
// same libraries at run time.
let torchRoot = Context.environment["TORCH_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
let torchIncludeFlags: [String] = torchRoot.map {
    ["-I\($0)/include", "-I\($0)/include/torch/csrc/api/include"]
} ?? ["-I/usr/include/torch/csrc/api/include"]
let torchLibraries = ["torch", "torch_cpu", "c10"]
let torchLinkSettings: [LinkerSetting] = torchRoot.map { root in
    [.unsafeFlags(torchLibraries.flatMap { ["-Xlinker", "\(root)/lib/lib\($0).so"] }
        + ["-Xlinker", "-rpath", "-Xlinker", "\(root)/lib"])]
} ?? torchLibraries.map { .linkedLibrary($0) }

// Pixel loops (decoding, augmentation, letterboxing), the detection loss's target assignment
// and the proxies' per-element maths run 10-20x slower unoptimised, which made the tests that
// train and evaluate real detectors take minutes (loader: 8.7 vs 162 images/s). These targets
// are optimised in debug builds too; step through them in a release build with -g.
let optimizedEvenInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "EdgeNAS",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "edgenas", targets: ["edgenas"]),
        .library(name: "EdgeNAS", targets: ["Torch", "Search", "Storage", "DetectionData", "Vision", "Estimation", "Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: libtorch bridge
        .target(
            name: "CTorch",
            cxxSettings: [.unsafeFlags(torchIncludeFlags + ["-std=c++17", "-O2"])],
            linkerSettings: torchLinkSettings
        ),
        .target(name: "Torch", dependencies: ["CTorch"]),

        // MARK: search core (no torch, no storage engine)
        // MARK: the one seeded random generator (no dependencies)
        .target(name: "Randomness"),
        // Small dense linear algebra (Cholesky, symmetric eigenproblems), shared by the
        // samplers' and the predictors' Gaussian processes and the proxies (no dependencies).
        .target(name: "LinearAlgebra"),

        .target(name: "Search", dependencies: [
            "Randomness", "LinearAlgebra",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Storage", dependencies: [
            "Search",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // MARK: detection data and models
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // C layer that traps libjpeg/libpng errors (they exit or longjmp) and returns them to Swift.
        .target(
            name: "CImageCodecs", dependencies: ["CJPEG", "CPNG"],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(name: "DetectionData", dependencies: ["CImageCodecs", "Randomness"], swiftSettings: optimizedEvenInDebug),
        .target(name: "Vision", dependencies: ["Torch", "DetectionData", "Randomness"], swiftSettings: optimizedEvenInDebug),

        // MARK: performance estimation
        .target(name: "Estimation", dependencies: ["Randomness", "LinearAlgebra"]),
        // Zero-cost proxies on real networks (torch); Estimation itself stays torch-free.
        .target(name: "ZeroCostProxies", dependencies: ["Torch", "Vision", "DetectionData", "LinearAlgebra"], swiftSettings: optimizedEvenInDebug),
        // The two-stage estimator selection and the budget planner on the detector space.
        .target(name: "Estimators", dependencies: ["Torch", "Vision", "DetectionData", "Estimation", "ZeroCostProxies", "Randomness", "Hardware"]),
        .executableTarget(name: "edgenas-bench-estimation", dependencies: ["Estimation", "Randomness"], path: "Benchmarks/estimation/Sources"),

        // MARK: reports (SVG, HTML, CSV; knows nothing of torch or search)
        .target(name: "Reports"),

        // MARK: deployment export (ONNX FP32 and INT8 QDQ; the protobuf code is generated once and committed)
        .target(name: "ONNXExport", dependencies: ["Vision", "Torch", "DetectionData", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        // TFLite export (FP32 and full-integer INT8) through a FlatBuffers writer of its own.
        .target(name: "TFLiteExport", dependencies: ["Vision"]),

        // MARK: ONNX Runtime (dlopen()ed at run time, so the package builds without it;
        // scripts/install.sh --deps installs libonnxruntime)
        .target(name: "CONNXRuntime", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "ONNXRuntime", dependencies: ["CONNXRuntime"]),

        // MARK: hardware (latency backends, per-layer profiles, INT8 quantization)
        .target(name: "Hardware", dependencies: ["CTorch", "Torch", "Vision", "ONNXExport", "ONNXRuntime"]),

        // MARK: hardware in the loop (latency backends beyond the local libtorch, the board agent)
        // External commands with a time limit that stops their whole process group.
        .target(name: "ProcessRunning"),
        .target(name: "LatencyBackends", dependencies: ["Hardware", "Vision", "Estimation", "ProcessRunning", "TFLiteExport", "Torch"]),
        .target(name: "LatencyAgent", dependencies: [
            "LatencyBackends", "Hardware", "Vision",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // MARK: workflow (studies run by workers, objectives, the search pipeline, reports, dashboard)
        .target(name: "Workflow", dependencies: [
            "Search", "ProcessRunning", "Reports", "Torch", "Vision", "DetectionData", "Hardware", "Estimation", "LatencyBackends",
            "Estimators", "ZeroCostProxies", "Randomness",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),

        // MARK: command-line tool
        .executableTarget(name: "edgenas", dependencies: [
            "Torch", "Search", "Storage", "DetectionData", "Vision", "Estimation", "Reports", "Workflow", "Hardware",
            "LatencyBackends", "LatencyAgent", "Estimators", "ONNXExport", "TFLiteExport", "ONNXRuntime", "ProcessRunning",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // MARK: benchmarks
        .executableTarget(name: "edgenas-bench-torch", dependencies: ["Torch", "Vision"], path: "Benchmarks/torch/Sources/edgenas-bench-torch"),
        .executableTarget(name: "edgenas-bench-search", dependencies: ["Search", "Randomness"], path: "Benchmarks/search/Sources"),
        .executableTarget(name: "edgenas-bench-hardware", dependencies: ["Hardware", "LatencyBackends", "Estimation", "Randomness", "Vision", "Torch"],
                          path: "Benchmarks/hardware/Sources"),
        .executableTarget(name: "edgenas-bench-hardware-predictor", dependencies: ["LatencyBackends", "Hardware", "Vision", "Estimation", "Randomness"],
                          path: "Benchmarks/hardware-predictor/Sources"),

        // MARK: tests
        .testTarget(name: "TorchTests", dependencies: ["Torch", "Vision"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SearchTests", dependencies: ["Search", "Randomness", "LinearAlgebra"]),
        .testTarget(name: "StorageTests", dependencies: [
            "Storage", "Search", .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        // Worker processes for the storage tests' concurrency checks and the storage benchmark.
        .executableTarget(name: "edgenas-storage-worker", dependencies: [
            "Storage", "Search", "Randomness", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Tests/StorageWorker"),
        .testTarget(name: "DetectionDataTests", dependencies: ["DetectionData", "Randomness"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EstimationTests", dependencies: ["Estimation", "Randomness"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports"]),
        .testTarget(name: "WorkflowTests", dependencies: [
            "Workflow", "Storage", "Search", "Vision", "Hardware", "DetectionData", "Torch", "Randomness", "Estimation", "Estimators",
            "LatencyBackends", "ZeroCostProxies",
        ]),
        .testTarget(name: "VisionTests", dependencies: ["Vision", "Torch", "DetectionData", "ONNXRuntime"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware", "Vision", "Torch", "ONNXRuntime"]),
        .testTarget(name: "LatencyBackendsTests", dependencies: ["LatencyBackends", "Hardware", "Vision", "ProcessRunning"]),
        .testTarget(name: "LatencyAgentTests", dependencies: [
            "LatencyAgent", "LatencyBackends", "Hardware", "Vision", "Torch", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ZeroCostProxiesTests", dependencies: ["ZeroCostProxies", "Vision", "Torch", "DetectionData"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ONNXRuntimeTests", dependencies: ["ONNXRuntime"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "ONNXRuntime", "Vision", "Torch", "Hardware",
                                                           .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "TFLiteExportTests", dependencies: ["TFLiteExport", "ONNXExport", "DetectionData", "Vision", "Torch", "Hardware"]),
        .testTarget(name: "EstimatorsTests", dependencies: ["Estimators", "Estimation", "Vision", "ZeroCostProxies"]),
    ],
    cxxLanguageStandard: .cxx17
)
