import Testing
@testable import Hardware

/// Expected values are worked out by hand with numpy.percentile's default (linear) method:
/// rank = p/100 * (n - 1), interpolating between neighbouring order statistics.
struct LatencyStatisticsTests {
    @Test func quartilesMedianAndDeviationOfOneToTen() throws {
        let statistics = try #require(LatencyStatistics([7, 3, 10, 1, 5, 2, 9, 4, 8, 6]))
        #expect(statistics.count == 10)
        #expect(statistics.median == 5.5)
        #expect(statistics.lowerQuartile == 3.25)  // rank 2.25 between 3 and 4
        #expect(statistics.upperQuartile == 7.75)  // rank 6.75 between 7 and 8
        #expect(statistics.interquartileRange == 4.5)
        #expect(statistics.medianAbsoluteDeviation == 2.5)  // |x - 5.5|: 0.5 0.5 1.5 1.5 2.5 2.5 ...
        #expect(statistics.minimum == 1 && statistics.maximum == 10 && statistics.mean == 5.5)
    }

    @Test func anOutlierMovesTheMeanButNotTheMedianOrDeviation() throws {
        let statistics = try #require(LatencyStatistics([3, 1, 100, 2]))
        #expect(statistics.median == 2.5)
        #expect(statistics.lowerQuartile == 1.75)
        #expect(statistics.upperQuartile == 27.25)  // rank 2.25: 3 + 0.25 * 97
        #expect(statistics.medianAbsoluteDeviation == 1.0)  // 0.5 0.5 1.5 97.5
        #expect(statistics.mean == 26.5)
    }

    @Test func noSamplesGiveNoStatistics() {
        #expect(LatencyStatistics([]) == nil)
        #expect(LatencyStatistics.median([]) == nil)
    }

    @Test func percentileEndsAreTheExtremes() {
        let sorted: [Double] = [2, 4, 8]
        #expect(LatencyStatistics.percentile(sorted: sorted, 0) == 2)
        #expect(LatencyStatistics.percentile(sorted: sorted, 100) == 8)
        #expect(LatencyStatistics.percentile(sorted: sorted, 75) == 6)
    }
}

struct StopRuleTests {
    let policy = MeasurementPolicy(warmupRuns: 0, minimumRuns: 10, maximumRuns: 100, maximumSeconds: 60,
                                   stabilityWindow: 5, stabilityTolerance: 0.01)

    /// Feeds samples one by one and returns (runs, reason) at the first stop.
    func firstStop(_ samples: [Double], elapsed: (Int) -> Double = { _ in 0 }) -> (Int, StopReason)? {
        var previous: Double?
        for count in 1...samples.count {
            if let reason = LatencyHarness.stopRule(policy: policy, samples: Array(samples[0..<count]),
                                                    previousMedian: &previous, elapsedSeconds: elapsed(count)) {
                return (count, reason)
            }
        }
        return nil
    }

    @Test func constantSamplesAreStableAtTheSecondCheck() throws {
        // First check at 10 runs records the median, the second at 15 finds it unchanged.
        let stop = try #require(firstStop(Array(repeating: 2.0, count: 100)))
        #expect(stop.0 == 15 && stop.1 == .stable)
    }

    @Test func aSteadilyGrowingSeriesRunsToTheCap() throws {
        // The median grows by about 2.5 % per window of 5, above the 1 % tolerance.
        let samples = (0..<100).map { 100.0 + 5.0 * Double($0) }
        let stop = try #require(firstStop(samples))
        #expect(stop.0 == 100 && stop.1 == .maximumRuns)
    }

    @Test func theTimeBudgetEndsAnUnstableSeries() throws {
        let samples = (0..<100).map { 100.0 + 5.0 * Double($0) }
        let stop = try #require(firstStop(samples, elapsed: { Double($0) }))  // one second per run
        #expect(stop.0 == 60 && stop.1 == .maximumTime)
    }

    @Test func invalidPoliciesNameTheField() {
        var bad = policy
        bad.maximumRuns = 5
        #expect(throws: HardwareError.invalidSetting("maximumRuns", value: "5", expected: ">= minimumRuns (10)")) {
            try bad.validate()
        }
    }

    @Test func theHarnessStopsAndReportsEverySample() throws {
        var calls = 0
        let samples = try LatencyHarness.run(policy: MeasurementPolicy(
            warmupRuns: 3, minimumRuns: 4, maximumRuns: 7, maximumSeconds: 60, stabilityWindow: 100, stabilityTolerance: 0.01)) {
            calls += 1
        }
        #expect(calls == 10)  // 3 warm-up + 7 timed (the window never comes round)
        #expect(samples.milliseconds.count == 7 && samples.stopReason == .maximumRuns)
        #expect(samples.milliseconds.allSatisfy { $0 >= 0 && $0.isFinite })
    }
}
