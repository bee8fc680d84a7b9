import Foundation
import ONNXRuntime
import Vision

/// Per-layer profile on ONNX Runtime: the architecture exported as `ONNXRuntimeBackend` measures
/// it, the end-to-end time measured without profiling, then ONNX Runtime's own per-node kernel
/// times (its built-in profiler) over `runs` profiled runs, attributed to `DetectorGraph` nodes.
///
/// ONNX Runtime fuses and renames nodes (DQ -> Conv -> Relu -> Q becomes one QLinearConv named
/// after the Conv with a `_token_N` suffix, the NCHWc rewrite names a Conv after its output
/// tensor plus `_nchwc`), but the exporter names every ONNX node and tensor after its graph node
/// (`stage3.unit0.branch2.pw1.conv`, `stage3.unit0.branch2.pw1.quantize`, ...), so a kernel belongs
/// to the graph node whose name is the longest prefix of its name. Layout nodes ONNX Runtime adds
/// itself (`Transpose`, `ReorderOutput`) are charged to the graph node that ran before them.
public struct ONNXRuntimeLayerProfiler: Sendable {
    public var precision: ONNXRuntimeBackend.Precision
    public var threads: Int
    public var seed: UInt64
    public var weights: URL?
    public var endToEndPolicy: MeasurementPolicy
    /// Profiled runs kept, after `warmupRuns` that are run and dropped (first runs are slow).
    public var runs: Int
    public var warmupRuns: Int
    public var tolerance: Double
    public var libraryPath: String?

    public init(precision: ONNXRuntimeBackend.Precision = .int8, threads: Int = 1, seed: UInt64 = 0, weights: URL? = nil,
                endToEndPolicy: MeasurementPolicy = .endToEnd, runs: Int = 50, warmupRuns: Int = 5, tolerance: Double = 0.2,
                libraryPath: String? = nil) {
        self.precision = precision
        self.threads = threads
        self.seed = seed
        self.weights = weights
        self.endToEndPolicy = endToEndPolicy
        self.runs = runs
        self.warmupRuns = warmupRuns
        self.tolerance = tolerance
        self.libraryPath = libraryPath
    }

    public func profile(_ architecture: DetectorArchitecture) throws -> LayerProfile {
        let backend = ONNXRuntimeBackend(precision: precision, threads: threads, seed: seed, weights: weights, libraryPath: libraryPath)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-ort-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("model.onnx")
        try backend.model(architecture).write(to: model)
        return try profile(modelFile: model, architecture: architecture)
    }

    /// The profile of an ONNX file exported from `architecture` by EdgeNAS (its node names are
    /// what ties kernels to layers): what a board's agent runs on the file a search uploads.
    /// `precision` names the file's precision in the profile.
    public func profile(modelFile model: URL, architecture: DetectorArchitecture) throws -> LayerProfile {
        guard runs >= 1, warmupRuns >= 0 else {
            throw HardwareError.invalidSetting("runs", value: "\(runs) (warm-up \(warmupRuns))", expected: "at least 1 profiled run")
        }
        let backend = ONNXRuntimeBackend(precision: precision, policy: endToEndPolicy, threads: threads, seed: seed, libraryPath: libraryPath)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-ort-profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = try randomImage(architecture, seed: seed)
        let input = try image.floats(), shape = image.shape

        let endToEnd = try backend.measure(modelFile: model, input: input, shape: shape, architecture: architecture.description)
        let library = try ONNXRuntimeLibrary(path: libraryPath)
        let profiled = try MeasurementLock.measuring {
            let session = try ONNXRuntimeSession(modelPath: model.path, threads: threads, library: library,
                                                 profilingPrefix: directory.appendingPathComponent("profile").path)
            for _ in 0..<(warmupRuns + runs) { _ = try session.run(input, shape: shape) }
            return try ONNXRuntimeProfile(contentsOf: session.endProfiling())
        }
        let graph = try DetectorGraph(architecture)
        let attributed = Self.attribute(profiled, to: graph, dropping: warmupRuns, runs: runs)
        return try LayerProfiler.assemble(
            graph: graph, precision: precision == .int8 ? .int8 : .fp32, backend: backend.name, threads: threads,
            endToEnd: endToEnd.samplesMilliseconds, layerSamples: attributed.layers, inputQuantizationSamples: attributed.inputQuantization,
            tolerance: tolerance)
    }

    /// Per graph node, the summed kernel time of its ONNX Runtime nodes in each kept run (ms),
    /// and the image quantization's (INT8 only; nil when no kernel belongs to it).
    static func attribute(_ profile: ONNXRuntimeProfile, to graph: DetectorGraph, dropping warmup: Int, runs: Int)
        -> (layers: [[Double]], inputQuantization: [Double]?)
    {
        var index: [String: Int] = [:]
        for (position, node) in graph.nodes.enumerated() { index[node.name] = position }
        var layers = Array(repeating: Array(repeating: 0.0, count: runs), count: graph.nodes.count)
        var image = Array(repeating: 0.0, count: runs)
        var imageSeen = false
        var previous: Int?  // the graph node of the last attributed kernel, for layout kernels
        for node in profile.nodes {
            let kept = Array(node.durations.dropFirst(warmup).prefix(runs)).map { $0 / 1000 }
            let owner = LayerOwner.of(node.name, among: index)
            switch owner {
            case .some(.image):
                imageSeen = true
                for (run, value) in kept.enumerated() { image[run] += value }
            case .some(.node(let position)):
                previous = position
                for (run, value) in kept.enumerated() { layers[position][run] += value }
            case nil:
                // A kernel ONNX Runtime added (layout transposes, reorders): next to the one before it.
                let position = previous ?? 0
                for (run, value) in kept.enumerated() { layers[position][run] += value }
            }
        }
        return (layers, imageSeen ? image : nil)
    }
}
