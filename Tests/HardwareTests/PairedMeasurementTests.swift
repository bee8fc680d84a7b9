import Testing
import Vision
@testable import Hardware

struct PairedMeasurementTests {
    /// A simulated machine that becomes 1.6x slower after 15 rounds, as this project's VM does
    /// for seconds at a time: each run's time doubles as its median, but the ratio of runs a
    /// round apart stays exactly the work ratio, and the two alternate which runs first.
    @Test func pairedRunsCancelAChangeOfTheMachinesSpeed() throws {
        var now = 0.0
        var calls: [String] = []
        func work(_ name: String, milliseconds: Double) {
            // Warm-up takes 2 calls each; round k's calls are 4 + 2k and 5 + 2k.
            let slow = calls.count >= 4 + 2 * 15
            calls.append(name)
            now += milliseconds * (slow ? 1.6 : 1.0) / 1e3
        }
        let policy = MeasurementPolicy(warmupRuns: 2, minimumRuns: 40, maximumRuns: 40, maximumSeconds: 100,
                                       stabilityWindow: 10, stabilityTolerance: 0.01)
        let samples = try LatencyHarness.runPaired(policy: policy, seconds: { now },
                                                   reference: { work("r", milliseconds: 10) }, candidate: { work("c", milliseconds: 6) })
        #expect(samples.stopReason == .maximumRuns)
        #expect(samples.reference.count == 40 && samples.candidate.count == 40)
        #expect(calls.prefix(10) == ["r", "c", "r", "c", "r", "c", "c", "r", "r", "c"])
        #expect(Set(samples.reference.map { ($0 * 1e6).rounded() / 1e6 }) == [10, 16])
        let candidate = try LatencyMeasurement(backend: "simulated", architecture: "candidate", threads: 1, warmupRuns: 2,
                                               samples: TimedSamples(milliseconds: samples.candidate, stopReason: samples.stopReason))
        let reference = try LatencyMeasurement(backend: "simulated", architecture: "reference", threads: 1, warmupRuns: 2,
                                               samples: TimedSamples(milliseconds: samples.reference, stopReason: samples.stopReason))
        let paired = try PairedLatencyMeasurement(candidate: candidate, reference: reference)
        #expect(paired.ratios.allSatisfy { abs($0 - 0.6) < 1e-9 })
        let scaled = try paired.candidate(atReferenceMilliseconds: 20)
        #expect(scaled.samplesMilliseconds.count == 40 && abs(scaled.median - 12) < 1e-9 && scaled.architecture == "candidate")
        // Alone, the candidate's median sits in the slow state (25 of 40 runs): 9.6 ms, not 6.
        #expect(abs(candidate.median - 9.6) < 1e-9)
    }

    @Test func aNetworkTimedAgainstItselfIsAboutOneAndEveryRoundIsPaired() throws {
        let policy = MeasurementPolicy(warmupRuns: 2, minimumRuns: 10, maximumRuns: 30, maximumSeconds: 10,
                                       stabilityWindow: 5, stabilityTolerance: 0.05)
        let backend = TorchFP32Backend(policy: policy, threads: 1, seed: 3)
        let paired = try backend.measure(tinyArchitecture, against: tinyArchitecture)
        #expect(paired.candidate.architecture == tinyArchitecture.description && paired.reference.architecture == tinyArchitecture.description)
        #expect(paired.candidate.backend == "torch-fp32")
        #expect((10...30).contains(paired.ratios.count))
        #expect(paired.candidate.samplesMilliseconds.count == paired.ratios.count && paired.reference.samplesMilliseconds.count == paired.ratios.count)
        // Identical networks: the rounds' ratios scatter around 1 (a bound loose enough for a loaded machine).
        #expect(paired.ratio.median > 0.5 && paired.ratio.median < 2)
    }

    @Test func pairedSamplesOfDifferentLengthsAreRejected() throws {
        let one = try LatencyMeasurement(backend: "b", architecture: "a", threads: 1, warmupRuns: 0,
                                         samples: TimedSamples(milliseconds: [1], stopReason: .maximumRuns))
        let two = try LatencyMeasurement(backend: "b", architecture: "a", threads: 1, warmupRuns: 0,
                                         samples: TimedSamples(milliseconds: [1, 2], stopReason: .maximumRuns))
        #expect(throws: HardwareError.self) { try PairedLatencyMeasurement(candidate: one, reference: two) }
    }
}
