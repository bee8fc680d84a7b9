import Vision

/// How an NPU's compiler (Arm's Vela for Ethos-U) mapped a network: operators on the NPU,
/// operators left to the CPU (where latency hides: the NPU waits for them), and on-chip memory.
public struct NPUMapping: Codable, Hashable, Sendable {
    public var npuOperators: Int
    public var cpuOperators: Int
    /// Operators of the compiled model that read or write float tensors (EdgeNAS's float input
    /// and head): an integer NPU leaves them on the CPU by design.
    public var floatOperators: Int
    public var sramKiB: Double

    public init(npuOperators: Int, cpuOperators: Int, floatOperators: Int, sramKiB: Double) {
        self.npuOperators = npuOperators
        self.cpuOperators = cpuOperators
        self.floatOperators = floatOperators
        self.sramKiB = sramKiB
    }

    /// Integer operators the NPU lacks, left on the CPU: the CPU operators beyond the float ones.
    public var fallbackOperators: Int { max(0, cpuOperators - floatOperators) }
}

/// One latency measurement of a network on a backend: summary statistics and the raw samples,
/// all in milliseconds.
public struct LatencyMeasurement: Codable, Hashable, Sendable {
    /// The backend's name, e.g. "torch-fp32" or "torch-int8-onednn".
    public var backend: String
    /// The architecture's short name.
    public var architecture: String
    /// Intra-op threads the backend ran with.
    public var threads: Int
    public var warmupRuns: Int
    public var statistics: LatencyStatistics
    public var samplesMilliseconds: [Double]
    public var stopReason: StopReason
    /// How an NPU compiler mapped the network (nil: a backend without one).
    public var npu: NPUMapping?

    public var median: Double { statistics.median }
    public var interquartileRange: Double { statistics.interquartileRange }
    public var medianAbsoluteDeviation: Double { statistics.medianAbsoluteDeviation }
    public var minimum: Double { statistics.minimum }

    public init(backend: String, architecture: String, threads: Int, warmupRuns: Int, samples: TimedSamples) throws(HardwareError) {
        guard let statistics = LatencyStatistics(samples.milliseconds) else {
            throw .invalidSetting("samples", value: "0", expected: "at least one timed run")
        }
        self.backend = backend
        self.architecture = architecture
        self.threads = threads
        self.warmupRuns = warmupRuns
        self.statistics = statistics
        samplesMilliseconds = samples.milliseconds
        stopReason = samples.stopReason
    }
}

/// Something that can say how long a network takes on a piece of hardware: a local libtorch,
/// later a device reached over the network or a lookup table.
public protocol LatencyBackend: Sendable {
    /// A short stable name that goes into results, e.g. "torch-fp32".
    var name: String { get }
    /// Builds (or looks up) the network of `architecture` and measures one forward pass at batch 1.
    func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement
}
