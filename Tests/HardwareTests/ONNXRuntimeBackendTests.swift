import Foundation
import ONNXRuntime
import Testing
import Vision
@testable import Hardware

struct ONNXRuntimeBackendTests {
    static let policy = MeasurementPolicy(warmupRuns: 2, minimumRuns: 5, maximumRuns: 12, maximumSeconds: 10,
                                          stabilityWindow: 5, stabilityTolerance: 0.05)

    @Test(arguments: ONNXRuntimeBackend.Precision.allCases)
    func measuresTheExportedModel(precision: ONNXRuntimeBackend.Precision) throws {
        let backend = ONNXRuntimeBackend(precision: precision, policy: Self.policy, seed: 3)
        let measurement = try backend.measure(architecture: tinyArchitecture)
        #expect(measurement.backend == "onnxruntime-\(precision.rawValue)")
        #expect(measurement.architecture == tinyArchitecture.description && measurement.threads == 1)
        #expect(measurement.samplesMilliseconds.count >= 5)
        #expect(measurement.median > 0 && measurement.median.isFinite)
    }

    @Test func theInt8ModelIsQuantizedAndTheFp32ModelIsNot() throws {
        let int8 = try ONNXRuntimeBackend(precision: .int8).model(tinyArchitecture)
        let fp32 = try ONNXRuntimeBackend(precision: .fp32).model(tinyArchitecture)
        let marker = Data("QuantizeLinear".utf8)
        #expect(int8.range(of: marker) != nil)
        #expect(fp32.range(of: marker) == nil)
    }

    @Test func aMissingLibraryIsAClearError() throws {
        let backend = ONNXRuntimeBackend(precision: .fp32, policy: Self.policy, libraryPath: "/nonexistent/libonnxruntime.so")
        let error = #expect(throws: ONNXRuntimeError.self) { try backend.measure(architecture: tinyArchitecture) }
        #expect(error?.description.contains("/nonexistent/libonnxruntime.so") == true)
    }
}
