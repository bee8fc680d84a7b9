import Foundation
import ONNXExport
import ONNXRuntime
import Torch
import Vision

/// Latency on a deployment runtime: the architecture exported to ONNX (`DetectorONNXExporter`,
/// FP32 or INT8 QDQ) and run by ONNX Runtime's CPU kernels at batch 1, one thread by default,
/// workers that sleep instead of spin. Eager libtorch is several times slower than this at
/// batch 1 and spreads its time differently over the layers, so this is the figure closer to
/// what a deployed model sees (docs/benchmarks.md).
///
/// Weights are seeded random (or loaded from `weights`); INT8 is calibrated on
/// `calibrationImages` seeded random images, as `TorchInt8Backend` does: latency depends on the
/// shapes and the grids' existence, not on the values.
public struct ONNXRuntimeBackend: InProcessLatencyBackend {
    public enum Precision: String, Codable, Hashable, Sendable, CaseIterable {
        case fp32, int8
    }

    public var precision: Precision
    public var policy: MeasurementPolicy
    public var threads: Int
    public var seed: UInt64
    public var weights: URL?
    public var calibrationImages: Int
    /// The ONNX Runtime shared library; nil: `ONNXRuntimeLibrary`'s search.
    public var libraryPath: String?

    public init(precision: Precision = .int8, policy: MeasurementPolicy = .endToEnd, threads: Int = 1, seed: UInt64 = 0,
                weights: URL? = nil, calibrationImages: Int = 2, libraryPath: String? = nil) {
        self.precision = precision
        self.policy = policy
        self.threads = threads
        self.seed = seed
        self.weights = weights
        self.calibrationImages = calibrationImages
        self.libraryPath = libraryPath
    }

    public var name: String { "onnxruntime-\(precision.rawValue)" }

    /// The serialized ONNX model this backend measures for `architecture`.
    public func model(_ architecture: DetectorArchitecture) throws -> Data {
        try Torch.withNoGrad {
            let detector = try makeDetector(architecture, seed: seed, weights: weights)
            let quantization = precision == .int8 ? try randomCalibration(detector, seed: seed, count: calibrationImages) : nil
            let classNames = (0..<architecture.classCount).map { "class\($0)" }
            return try DetectorONNXExporter.serializedModel(detector, quantization: quantization, classNames: classNames)
        }
    }

    public func withRunnable<Result>(_ architecture: DetectorArchitecture, _ body: (_ run: () throws -> Void) throws -> Result) throws -> Result {
        try policy.validate()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-latency-\(UUID().uuidString).onnx")
        do {
            try model(architecture).write(to: file)
        } catch {
            throw HardwareError.cannotWrite(path: file.path, reason: "\(error)")
        }
        defer { try? FileManager.default.removeItem(at: file) }
        let session = try ONNXRuntimeSession(modelPath: file.path, threads: threads, library: try ONNXRuntimeLibrary(path: libraryPath))
        let image = try randomImage(architecture, seed: seed)
        let input = try image.floats()
        return try body { _ = try session.run(input, shape: image.shape) }
    }

    /// Measures a model file exported for `architecture` (a board's agent measuring an uploaded
    /// model) on a seeded random image of the architecture's input size.
    public func measure(modelFile: URL, architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        let image = try randomImage(architecture, seed: seed)
        return try measure(modelFile: modelFile, input: image.floats(), shape: image.shape, architecture: architecture.description)
    }

    /// Measures an existing model file (for example the exported model a board will run) on
    /// `input` of `shape`.
    public func measure(modelFile: URL, input: [Float], shape: [Int], architecture: String) throws -> LatencyMeasurement {
        try policy.validate()
        let library = try ONNXRuntimeLibrary(path: libraryPath)
        let session = try ONNXRuntimeSession(modelPath: modelFile.path, threads: threads, library: library)
        let samples = try MeasurementLock.measuring { try LatencyHarness.run(policy: policy) { _ = try session.run(input, shape: shape) } }
        return try LatencyMeasurement(backend: name, architecture: architecture, threads: threads, warmupRuns: policy.warmupRuns,
                                      samples: samples)
    }
}
