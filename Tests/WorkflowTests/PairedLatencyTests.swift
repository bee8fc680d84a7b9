import Hardware
import Search
import Testing
import Vision
@testable import Workflow

/// How a search trial's latency is measured: against the base model once its trial is done.
struct PairedLatencyTests {
    let base = DetectorArchitecture(
        headKernelSize: 3, headGroups: 1, headChannels: 16, inputWidthPixels: 96, stemChannels: 8,
        stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)
    var smaller: DetectorArchitecture { base.atInputWidth(64) }
    let backend = TorchFP32Backend(policy: MeasurementPolicy(warmupRuns: 2, minimumRuns: 10, maximumRuns: 30, maximumSeconds: 10,
                                                             stabilityWindow: 5, stabilityTolerance: 0.05))

    func baseTrial(milliseconds: Double) throws -> FrozenTrial {
        let record = TrialRecord(architecture: base.description, latencyMilliseconds: milliseconds, latencyInterquartileRange: 0,
                                 latencyBackend: backend.name, parameters: 0, memoryMegabytes: 0, multiplyAccumulates: 0,
                                 estimator: "short", score: 0.5, ap50: 0.5, estimateSeconds: 1, estimateEpochs: 1)
        return FrozenTrial(id: 0, number: 0, state: .complete, userAttributes: [TrialRecord.attribute: try jsonText(record)])
    }

    @Test func aTrialAfterTheBaseIsTimedAgainstItInTheBaseTrialsMilliseconds() throws {
        // A base trial that took 1000 ms: the smaller network's ratio (well under 1) times that.
        let (measurement, reference) = try SearchPipeline.measureLatency(smaller, base: base, latency: backend,
                                                                         baseTrial: try baseTrial(milliseconds: 1000))
        #expect(reference == base.description)
        #expect(measurement.architecture == smaller.description && measurement.backend == "torch-fp32")
        // 64 px against 96 px: under the base (1000 ms), far above a real run of this tiny network (well under 100 ms).
        #expect(measurement.median > 100 && measurement.median < 1000)
    }

    @Test func theBaseItselfAndTrialsBeforeItsResultAreTimedAlone() throws {
        let (baseMeasurement, baseReference) = try SearchPipeline.measureLatency(base, base: base, latency: backend,
                                                                                 baseTrial: try baseTrial(milliseconds: 1000))
        #expect(baseReference == nil && baseMeasurement.median < 100)
        let (early, earlyReference) = try SearchPipeline.measureLatency(smaller, base: base, latency: backend, baseTrial: nil)
        #expect(earlyReference == nil && early.median < 100)
        // A board or a model of one is asked for one network at a time.
        let (fake, fakeReference) = try SearchPipeline.measureLatency(smaller, base: base, latency: FakeLatency(),
                                                                      baseTrial: try baseTrial(milliseconds: 1000))
        let expected = try FakeLatency.milliseconds(smaller)
        #expect(fakeReference == nil && fake.median == expected)
    }
}
