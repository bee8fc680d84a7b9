import Foundation
import Torch
import Vision

/// Latency of the eager libtorch FP32 detector (`Detector.forward`) at batch 1, evaluation
/// mode, autograd off, as a user of the trained model runs it. Weights are random unless a
/// file is given: latency does not depend on their values.
public struct TorchFP32Backend: InProcessLatencyBackend {
    public var policy: MeasurementPolicy
    /// Intra-op threads; 1 by default because edge boards are measured one core at a time and
    /// one thread is the least disturbed by other processes.
    public var threads: Int
    /// Seed of the random weights and the random input image.
    public var seed: UInt64
    /// Weights saved by `Module.save(to:)` (e.g. a training checkpoint's model file), or nil.
    public var weights: URL?

    public init(policy: MeasurementPolicy = .endToEnd, threads: Int = 1, seed: UInt64 = 0, weights: URL? = nil) {
        self.policy = policy
        self.threads = threads
        self.seed = seed
        self.weights = weights
    }

    public var name: String { "torch-fp32" }

    public func withRunnable<Result>(_ architecture: DetectorArchitecture, _ body: (_ run: () throws -> Void) throws -> Result) throws -> Result {
        try policy.validate()
        return try withThreadCount(threads) {
            try Torch.withNoGrad {
                let detector = try makeDetector(architecture, seed: seed, weights: weights)
                let image = try randomImage(architecture, seed: seed)
                return try body { _ = try detector(image) }
            }
        }
    }
}

/// Runs `body` with libtorch's intra-op thread count set to `threads`, restoring it afterwards.
func withThreadCount<Result>(_ threads: Int, _ body: () throws -> Result) throws -> Result {
    guard threads >= 1 else { throw HardwareError.invalidSetting("threads", value: String(threads), expected: "at least 1") }
    let previous = Torch.threadCount
    Torch.setThreadCount(threads)
    defer { Torch.setThreadCount(previous) }
    return try body()
}

/// The detector of `architecture` in evaluation mode with seeded random weights, or with the
/// weights in `weights`.
public func makeDetector(_ architecture: DetectorArchitecture, seed: UInt64, weights: URL?) throws -> Detector {
    let detector = try Torch.seeded(seed) { try Detector(architecture) }
    if let weights { try detector.load(from: weights) }
    detector.eval()
    return detector
}

/// A [1, 3, H, W] image of uniform values in [0, 1) (the range of the data pipeline's images).
func randomImage(_ architecture: DetectorArchitecture, seed: UInt64) throws -> Tensor {
    try Tensor.uniform(architecture.inputShape(batch: 1), generator: Generator(seed: seed ^ 0x1A7E_1C7))
}

/// The INT8 calibration of `detector` on `count` seeded random images (at least one): latency
/// depends on the grids' existence and the shapes, not on their values.
public func randomCalibration(_ detector: Detector, seed: UInt64, count: Int, options: CalibrationOptions = CalibrationOptions()) throws
    -> QuantizationParameters
{
    let images = try (0..<max(1, count)).map { try randomImage(detector.architecture, seed: seed &+ 1 &+ UInt64($0)) }
    return try QuantizationCalibrator.calibrate(detector, images: images, options: options)
}
