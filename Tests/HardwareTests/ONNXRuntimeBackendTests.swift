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

    /// Same seed, same model, also when other threads build models from other seeds at the
    /// same time (libtorch's generator is process-wide; a CI run once got different weights).
    @Test func aSeedGivesTheSameModelWhileOtherThreadsBuildModels() async throws {
        let expected = try ONNXRuntimeBackend(precision: .fp32, seed: 7).model(tinyArchitecture)
        let models = try await withThrowingTaskGroup(of: (UInt64, Data).self) { group in
            for index in 0..<8 {
                let seed: UInt64 = index.isMultiple(of: 2) ? 7 : UInt64(100 + index)
                group.addTask { (seed, try ONNXRuntimeBackend(precision: .fp32, seed: seed).model(tinyArchitecture)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(models.filter { $0.0 == 7 }.allSatisfy { $0.1 == expected })
        #expect(models.filter { $0.0 != 7 }.allSatisfy { $0.1 != expected })
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
