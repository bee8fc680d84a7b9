/// When a latency measurement stops: after warm-up it repeats the timed body until the median
/// has settled, or until a run or time budget is spent.
public struct MeasurementPolicy: Codable, Hashable, Sendable {
    /// Untimed runs first: the first calls allocate buffers, prepack weights, fill caches and
    /// let the frequency governor ramp up.
    public var warmupRuns: Int
    /// Timed runs before the stability rule is first applied.
    public var minimumRuns: Int
    /// Hard cap on timed runs.
    public var maximumRuns: Int
    /// Hard cap on the timed phase, in seconds (checked after each run).
    public var maximumSeconds: Double
    /// The median is re-checked every `stabilityWindow` runs ...
    public var stabilityWindow: Int
    /// ... and the measurement is stable when it moved by less than this fraction since the
    /// previous check (0.01 = 1 %).
    public var stabilityTolerance: Double

    public init(
        warmupRuns: Int = 5, minimumRuns: Int = 20, maximumRuns: Int = 500, maximumSeconds: Double = 20,
        stabilityWindow: Int = 10, stabilityTolerance: Double = 0.01
    ) {
        self.warmupRuns = warmupRuns
        self.minimumRuns = minimumRuns
        self.maximumRuns = maximumRuns
        self.maximumSeconds = maximumSeconds
        self.stabilityWindow = stabilityWindow
        self.stabilityTolerance = stabilityTolerance
    }

    /// End-to-end measurements of a whole network.
    public static let endToEnd = MeasurementPolicy()

    /// One layer of a per-layer profile: many cheap runs, a short time budget per layer.
    public static let perLayer = MeasurementPolicy(
        warmupRuns: 3, minimumRuns: 15, maximumRuns: 300, maximumSeconds: 1.5, stabilityWindow: 10, stabilityTolerance: 0.02)

    /// Checks the values; the error names the field.
    public func validate() throws(HardwareError) {
        func require(_ ok: Bool, _ field: String, _ value: CustomStringConvertible, _ expected: String) throws(HardwareError) {
            if !ok { throw .invalidSetting(field, value: value.description, expected: expected) }
        }
        try require(warmupRuns >= 0, "warmupRuns", warmupRuns, "a count >= 0")
        try require(minimumRuns >= 1, "minimumRuns", minimumRuns, "a count >= 1")
        try require(maximumRuns >= minimumRuns, "maximumRuns", maximumRuns, ">= minimumRuns (\(minimumRuns))")
        try require(maximumSeconds > 0, "maximumSeconds", maximumSeconds, "a positive number of seconds")
        try require(stabilityWindow >= 1, "stabilityWindow", stabilityWindow, "a count >= 1")
        try require(stabilityTolerance > 0, "stabilityTolerance", stabilityTolerance, "a positive fraction")
    }
}

/// Why the timed phase ended.
public enum StopReason: String, Codable, Hashable, Sendable {
    /// The median moved by less than the tolerance over the last window.
    case stable
    case maximumRuns
    case maximumTime
}

/// The timed samples of one harness run, in milliseconds.
public struct TimedSamples: Hashable, Sendable {
    public var milliseconds: [Double]
    public var stopReason: StopReason

    public init(milliseconds: [Double], stopReason: StopReason) {
        self.milliseconds = milliseconds
        self.stopReason = stopReason
    }
}

/// Times a body repeatedly with a monotonic clock.
public enum LatencyHarness {
    /// Runs `body` `policy.warmupRuns` times untimed, then times it until `stopRule` says stop.
    public static func run(policy: MeasurementPolicy, _ body: () throws -> Void) throws -> TimedSamples {
        try policy.validate()
        for _ in 0..<policy.warmupRuns { try body() }
        let clock = ContinuousClock()
        let phaseStart = clock.now
        var samples: [Double] = []
        samples.reserveCapacity(min(policy.maximumRuns, 1024))
        var previousMedian: Double?
        while true {
            let start = clock.now
            try body()
            let elapsed = clock.now - start
            samples.append(milliseconds(elapsed))
            if let reason = stopRule(policy: policy, samples: samples, previousMedian: &previousMedian,
                                     elapsedSeconds: seconds(clock.now - phaseStart)) {
                return TimedSamples(milliseconds: samples, stopReason: reason)
            }
        }
    }

    /// The stopping rule, separate from the clock so it can be tested on synthetic samples.
    /// Every `stabilityWindow` samples (from `minimumRuns` on) it compares the median of all
    /// samples with the median at the previous check, kept in `previousMedian`.
    public static func stopRule(
        policy: MeasurementPolicy, samples: [Double], previousMedian: inout Double?, elapsedSeconds: Double
    ) -> StopReason? {
        if samples.count >= policy.maximumRuns { return .maximumRuns }
        if elapsedSeconds >= policy.maximumSeconds && samples.count >= 1 { return .maximumTime }
        guard samples.count >= policy.minimumRuns, (samples.count - policy.minimumRuns) % policy.stabilityWindow == 0,
              let median = LatencyStatistics.median(samples) else { return nil }
        defer { previousMedian = median }
        guard let previous = previousMedian, median > 0 else { return nil }
        return abs(median - previous) / median < policy.stabilityTolerance ? .stable : nil
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) * 1e3 + Double(parts.attoseconds) * 1e-15
    }

    static func seconds(_ duration: Duration) -> Double { milliseconds(duration) / 1e3 }
}

/// Failures of the hardware module: settings, engines, shapes, files.
public enum HardwareError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSetting(String, value: String, expected: String)
    case unsupportedQuantizedEngine(String, available: [String])
    case calibrationFailed(String)
    case cannotWrite(path: String, reason: String)
    case lockUnavailable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidSetting(field, value, expected): "setting '\(field)' is \(value); expected \(expected)"
        case let .unsupportedQuantizedEngine(name, available):
            "quantized engine '\(name)' is not available in this libtorch; it has: \(available.joined(separator: ", "))"
        case let .calibrationFailed(reason): "INT8 calibration failed: \(reason)"
        case let .cannotWrite(path, reason): "cannot write \(path): \(reason)"
        case let .lockUnavailable(path, reason): "cannot take the machine lock \(path): \(reason)"
        }
    }
}
