import Foundation
import Torch
import Vision

/// Latency of the INT8 detector (`QuantizedDetector`) on one of libtorch's quantized engines at
/// batch 1, as deployed: input quantization, quantized kernels, float detection output.
///
/// Weights are seeded random (or loaded from `weights`) and calibrated on `calibrationImages`
/// seeded random images: latency does not depend on the values, only on the shapes and the
/// engine. For accuracy use `QuantizationCalibrator` with real images (see `edgenas quantize`).
public struct TorchInt8Backend: InProcessLatencyBackend {
    public var policy: MeasurementPolicy
    /// Intra-op threads (1 by default, see `TorchFP32Backend.threads`).
    public var threads: Int
    /// A name from `QuantizedDetector.availableEngines`.
    public var engine: String
    public var seed: UInt64
    public var weights: URL?
    public var calibration: CalibrationOptions
    public var calibrationImages: Int

    public init(
        engine: String, policy: MeasurementPolicy = .endToEnd, threads: Int = 1, seed: UInt64 = 0, weights: URL? = nil,
        calibration: CalibrationOptions = CalibrationOptions(), calibrationImages: Int = 2
    ) {
        self.engine = engine
        self.policy = policy
        self.threads = threads
        self.seed = seed
        self.weights = weights
        self.calibration = calibration
        self.calibrationImages = calibrationImages
    }

    public var name: String { "torch-int8-\(engine)" }

    /// The calibrated INT8 network of `architecture` (also used by the profiler).
    public func makeQuantizedDetector(_ architecture: DetectorArchitecture) throws -> QuantizedDetector {
        let detector = try makeDetector(architecture, seed: seed, weights: weights)
        let parameters = try randomCalibration(detector, seed: seed, count: calibrationImages, options: calibration)
        return try QuantizedDetector(detector, parameters: parameters, engine: engine)
    }

    public func withRunnable<Result>(_ architecture: DetectorArchitecture, _ body: (_ run: () throws -> Void) throws -> Result) throws -> Result {
        try policy.validate()
        return try withThreadCount(threads) {
            try Torch.withNoGrad {
                let network = try makeQuantizedDetector(architecture)
                let image = try randomImage(architecture, seed: seed)
                return try body { _ = try network(image) }
            }
        }
    }
}
