import Vision

/// A latency backend whose networks run in this process, so that two of them can be timed run
/// for run beside each other (`measure(_:against:)`). Boards (agent, command) and models
/// (predictor, Vela) measure one network per request and are not.
public protocol InProcessLatencyBackend: LatencyBackend {
    var policy: MeasurementPolicy { get }
    var threads: Int { get }
    /// Builds `architecture`'s network and input, sets the runtime up as the backend measures
    /// (threads, no autograd), and calls `body` with a function that runs the network once.
    func withRunnable<Result>(_ architecture: DetectorArchitecture, _ body: (_ run: () throws -> Void) throws -> Result) throws -> Result
}

extension InProcessLatencyBackend {
    public func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        try withRunnable(architecture) { run in
            let samples = try MeasurementLock.measuring { try LatencyHarness.run(policy: policy, run) }
            return try LatencyMeasurement(backend: name, architecture: architecture.description, threads: threads,
                                          warmupRuns: policy.warmupRuns, samples: samples)
        }
    }

    /// `candidate`'s latency relative to `reference`'s, the two timed in alternating runs.
    ///
    /// On a shared or virtual machine a core's speed changes for seconds at a time (another
    /// tenant, the host's scheduler): the same network measured 13 ms and 20 ms in two processes
    /// a minute apart on this project's 2-core VM, and a network's median alone carries that
    /// state into every comparison. Runs a few milliseconds apart see the same state, so the
    /// ratio of each candidate run to the reference run beside it cancels it (docs/benchmarks.md,
    /// "Paired latency").
    public func measure(_ candidate: DetectorArchitecture, against reference: DetectorArchitecture) throws -> PairedLatencyMeasurement {
        try withRunnable(reference) { runReference in
            try withRunnable(candidate) { runCandidate in
                let samples = try MeasurementLock.measuring {
                    try LatencyHarness.runPaired(policy: policy, reference: runReference, candidate: runCandidate)
                }
                func measurement(_ architecture: DetectorArchitecture, _ milliseconds: [Double]) throws -> LatencyMeasurement {
                    try LatencyMeasurement(backend: name, architecture: architecture.description, threads: threads, warmupRuns: policy.warmupRuns,
                                           samples: TimedSamples(milliseconds: milliseconds, stopReason: samples.stopReason))
                }
                return try PairedLatencyMeasurement(candidate: measurement(candidate, samples.candidate),
                                                    reference: measurement(reference, samples.reference))
            }
        }
    }
}

/// Two networks timed in alternating runs: each one's own samples, and the ratio of each
/// candidate run to the reference run of the same round.
public struct PairedLatencyMeasurement: Codable, Hashable, Sendable {
    public var candidate: LatencyMeasurement
    public var reference: LatencyMeasurement
    /// Candidate over reference, round by round.
    public var ratios: [Double]
    public var ratio: LatencyStatistics

    public init(candidate: LatencyMeasurement, reference: LatencyMeasurement) throws(HardwareError) {
        let ratios = zip(candidate.samplesMilliseconds, reference.samplesMilliseconds).map { $0 / $1 }
        guard candidate.samplesMilliseconds.count == reference.samplesMilliseconds.count, let ratio = LatencyStatistics(ratios) else {
            throw .invalidSetting("paired samples", value: "\(candidate.samplesMilliseconds.count) and \(reference.samplesMilliseconds.count)",
                                  expected: "one reference run per candidate run, at least one")
        }
        self.candidate = candidate
        self.reference = reference
        self.ratios = ratios
        self.ratio = ratio
    }

    /// The candidate's measurement in the machine state in which the reference takes
    /// `referenceMilliseconds`: each round's ratio times that.
    public func candidate(atReferenceMilliseconds referenceMilliseconds: Double) throws(HardwareError) -> LatencyMeasurement {
        try LatencyMeasurement(backend: candidate.backend, architecture: candidate.architecture, threads: candidate.threads,
                               warmupRuns: candidate.warmupRuns,
                               samples: TimedSamples(milliseconds: ratios.map { $0 * referenceMilliseconds }, stopReason: candidate.stopReason))
    }
}

/// The samples of a paired harness run, in milliseconds, one of each per round.
public struct PairedSamples: Hashable, Sendable {
    public var reference: [Double]
    public var candidate: [Double]
    public var stopReason: StopReason
}

extension LatencyHarness {
    /// Runs `reference` and `candidate` `policy.warmupRuns` times each untimed, then times one of
    /// each per round, alternating which goes first (so neither always runs on caches the
    /// other left), until `stopRule` says stop on the rounds' ratios. `maximumRuns` counts rounds.
    public static func runPaired(policy: MeasurementPolicy, reference: () throws -> Void, candidate: () throws -> Void) throws -> PairedSamples {
        let clock = ContinuousClock()
        let origin = clock.now
        return try runPaired(policy: policy, seconds: { seconds(clock.now - origin) }, reference: reference, candidate: candidate)
    }

    /// `runPaired` on the clock `seconds` (a test's simulated machine).
    static func runPaired(
        policy: MeasurementPolicy, seconds now: () -> Double, reference: () throws -> Void, candidate: () throws -> Void
    ) throws -> PairedSamples {
        try policy.validate()
        for _ in 0..<policy.warmupRuns {
            try reference()
            try candidate()
        }
        func timed(_ body: () throws -> Void) throws -> Double {
            let start = now()
            try body()
            return (now() - start) * 1e3
        }
        let phaseStart = now()
        var samples = PairedSamples(reference: [], candidate: [], stopReason: .maximumRuns)
        var ratios: [Double] = []
        var previousMedian: Double?
        while true {
            if samples.reference.count % 2 == 0 {
                samples.reference.append(try timed(reference))
                samples.candidate.append(try timed(candidate))
            } else {
                samples.candidate.append(try timed(candidate))
                samples.reference.append(try timed(reference))
            }
            ratios.append(samples.candidate.last! / samples.reference.last!)
            if let reason = stopRule(policy: policy, samples: ratios, previousMedian: &previousMedian, elapsedSeconds: now() - phaseStart) {
                samples.stopReason = reason
                return samples
            }
        }
    }
}
