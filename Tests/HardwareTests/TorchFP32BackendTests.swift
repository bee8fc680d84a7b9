import Testing
import Vision
@testable import Hardware

/// A detector small enough to build and run in well under a second.
let tinyArchitecture = DetectorArchitecture(
    headKernelSize: 3, headGroups: 2, headChannels: 16, inputWidthPixels: 64, stemChannels: 8,
    stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)

struct TorchFP32BackendTests {
    @Test func aMeasurementHasPositiveFiniteFigures() throws {
        let policy = MeasurementPolicy(warmupRuns: 2, minimumRuns: 5, maximumRuns: 12, maximumSeconds: 10,
                                       stabilityWindow: 5, stabilityTolerance: 0.05)
        let backend = TorchFP32Backend(policy: policy, threads: 1, seed: 3)
        let measurement = try backend.measure(architecture: tinyArchitecture)
        #expect(measurement.backend == "torch-fp32")
        #expect(measurement.architecture == tinyArchitecture.description)
        #expect(measurement.threads == 1 && measurement.warmupRuns == 2)
        #expect((5...12).contains(measurement.samplesMilliseconds.count))
        #expect(measurement.samplesMilliseconds.allSatisfy { $0 > 0 && $0.isFinite })
        #expect(measurement.median > 0 && measurement.median.isFinite)
        #expect(measurement.minimum <= measurement.median)
        #expect(measurement.interquartileRange >= 0 && measurement.medianAbsoluteDeviation >= 0)
    }

    @Test func zeroThreadsIsRejected() {
        let backend = TorchFP32Backend(threads: 0)
        #expect(throws: HardwareError.invalidSetting("threads", value: "0", expected: "at least 1")) {
            try backend.measure(architecture: tinyArchitecture)
        }
    }
}
