import Foundation
import Testing
import Torch
import Vision
@testable import Hardware

/// libtorch's quantized engine is process-wide, so the engines are tested one after the other.
@Suite(.serialized)
struct QuantizedDetectorTests {
    /// Tolerance: on the same input the INT8 output differs from FP32 by less than 1 % of the
    /// FP32 output's range on average and 5 % at worst (8-bit grids over calibrated ranges
    /// lose about 0.4 % of a range per rounding; a dozen layers accumulate a few of them).
    @Test(arguments: QuantizedDetector.availableEngines)
    func int8OutputIsCloseToFP32(engine: String) throws {
        let detector = try Torch.seeded(21) { try Detector(tinyArchitecture) }
        try randomizeBatchNorms(detector, seed: 9)
        detector.eval()
        let side = tinyArchitecture.inputWidth
        let calibration = try (0..<4).map { try Tensor.uniform([1, 3, side, side], generator: Generator(seed: 100 + UInt64($0))) }
        let parameters = try QuantizationCalibrator.calibrate(detector, images: calibration)
        let int8 = try QuantizedDetector(detector, parameters: parameters, engine: engine)
        let image = try Tensor.uniform([1, 3, side, side], generator: Generator(seed: 7))
        let reference = try Torch.withNoGrad { try detector(image) }
        let quantized = try Torch.withNoGrad { try int8(image) }
        #expect(quantized.shape == reference.shape)
        let difference = try (quantized - reference).abs()
        let spread = try reference.max().item() - reference.min().item()
        let meanError = try difference.mean().item(), maxError = try difference.max().item()
        #expect(meanError < 0.01 * spread, "\(engine): mean |int8 - fp32| \(meanError), output range \(spread)")
        #expect(maxError < 0.05 * spread, "\(engine): max |int8 - fp32| \(maxError), output range \(spread)")
        #expect(maxError > 0)  // it did run in INT8
    }
}
