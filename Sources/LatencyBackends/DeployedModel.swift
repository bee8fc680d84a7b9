import Foundation
import Hardware
import TFLiteExport
import Torch
import Vision

/// The model file a board's agent, a benchmark command (`{model}`) or Vela gets for an
/// architecture: the network as the board would run it, exported with seeded random weights
/// (latency does not depend on the weights' values, and a trial is measured before it is
/// trained), INT8 calibrated on seeded random images as `onnxruntime int8` is.
///
/// ONNX (INT8 in QDQ form) for ONNX Runtime and the tools that read ONNX; TFLite (full-integer
/// INT8) for LiteRT with an NPU delegate (i.MX 8M Plus) and for Vela (i.MX 93's Ethos-U65).
public struct DeployedModel: Hashable, Sendable {
    public enum Format: String, Codable, Hashable, Sendable, CaseIterable {
        case onnx, tflite

        /// How an agent is told what it receives.
        public var uploadFormat: ModelFormat {
            switch self {
            case .onnx: .onnx
            case .tflite: .tflite
            }
        }
    }

    public var format: Format
    public var precision: ONNXRuntimeBackend.Precision
    public var seed: UInt64
    /// Seeded random images the INT8 grids are calibrated on.
    public var calibrationImages: Int

    public init(format: Format = .onnx, precision: ONNXRuntimeBackend.Precision = .int8, seed: UInt64 = 0, calibrationImages: Int = 2) {
        self.format = format
        self.precision = precision
        self.seed = seed
        self.calibrationImages = calibrationImages
    }

    /// The serialized model of `architecture`.
    public func data(_ architecture: DetectorArchitecture) throws -> Data {
        switch format {
        case .onnx:
            return try ONNXRuntimeBackend(precision: precision, seed: seed, calibrationImages: calibrationImages).model(architecture)
        case .tflite:
            return try tfliteFile(architecture).bytes
        }
    }

    /// The TFLite model of `architecture` (whatever `format` says) and what it runs in float.
    public func tfliteFile(_ architecture: DetectorArchitecture) throws -> TFLiteFile {
        try Torch.withNoGrad {
            let detector = try makeDetector(architecture, seed: seed, weights: nil)
            let quantization = precision == .int8 ? try randomCalibration(detector, seed: seed, count: calibrationImages) : nil
            return try DetectorTFLiteExporter.export(detector, quantization: quantization,
                                                     classNames: (0..<architecture.classCount).map { "class\($0)" })
        }
    }

    /// Writes the model of `architecture` into `directory` (created if needed) as
    /// `ARCHITECTURE-PRECISION-seedN.FORMAT` and returns the file.
    public func write(_ architecture: DetectorArchitecture, into directory: URL) throws -> URL {
        let file = directory.appendingPathComponent("\(architecture.description)-\(precision.rawValue)-seed\(seed).\(format.rawValue)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data(architecture).write(to: file, options: .atomic)
        } catch {
            throw HardwareError.cannotWrite(path: file.path, reason: "\(error)")
        }
        return file
    }
}
