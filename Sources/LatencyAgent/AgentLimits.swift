import Foundation
import Hardware
import LatencyBackends

/// What one request may ask of a shared board, and how long the agent waits for anything.
/// A request asking for more warm-up, runs, seconds or threads than these is measured with
/// these values, and its answer says so (`AgentMeasurement.adjustments`).
public struct AgentLimits: Sendable, Hashable {
    public var maximumWarmupRuns: Int
    public var maximumRuns: Int
    /// Cap on the timed phase of one request (the policy's `maximumSeconds`).
    public var maximumTimedSeconds: Double
    public var maximumThreads: Int
    /// Wall-clock cap on one measurement with any backend (network build or model load,
    /// warm-up, timed runs; a benchmark command is killed at this). Past it the client gets
    /// HTTP 422 at once; an in-process run that cannot be interrupted finishes in the background.
    public var measurementTimeoutSeconds: Double
    /// Uploads being received at once; more get HTTP 503 before their body is read, so a burst
    /// of clients cannot make the agent buffer gigabytes.
    public var maximumConcurrentUploads: Int
    /// An upload must arrive within this many seconds (slow bodies get HTTP 408).
    public var uploadTimeoutSeconds: Double
    /// A connection with no traffic for this long is closed.
    public var idleTimeoutSeconds: Double
    /// After SIGTERM or SIGINT, open requests get this long before they are cut off.
    public var shutdownGraceSeconds: Double
    /// Answers kept by request id for retries, and for how long.
    public var rememberedAnswers: Int
    public var rememberSeconds: Double

    public init(maximumWarmupRuns: Int = 50, maximumRuns: Int = 1000, maximumTimedSeconds: Double = 30,
                maximumThreads: Int = ProcessInfo.processInfo.activeProcessorCount, measurementTimeoutSeconds: Double = 120,
                maximumConcurrentUploads: Int = 4, uploadTimeoutSeconds: Double = 60, idleTimeoutSeconds: Double = 30,
                shutdownGraceSeconds: Double = 5, rememberedAnswers: Int = 1024, rememberSeconds: Double = 900) {
        self.maximumWarmupRuns = maximumWarmupRuns
        self.maximumRuns = maximumRuns
        self.maximumTimedSeconds = maximumTimedSeconds
        self.maximumThreads = maximumThreads
        self.measurementTimeoutSeconds = measurementTimeoutSeconds
        self.maximumConcurrentUploads = maximumConcurrentUploads
        self.uploadTimeoutSeconds = uploadTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.rememberedAnswers = rememberedAnswers
        self.rememberSeconds = rememberSeconds
    }

    func validate() throws(LatencyAgentError) {
        func require(_ ok: Bool, _ field: String, _ value: CustomStringConvertible, _ expected: String) throws(LatencyAgentError) {
            if !ok { throw .invalidSetting(field, value: value.description, expected: expected) }
        }
        try require(maximumWarmupRuns >= 0, "maximumWarmupRuns", maximumWarmupRuns, "a count >= 0")
        try require(maximumRuns >= 1, "maximumRuns", maximumRuns, "a count >= 1")
        try require(maximumThreads >= 1, "maximumThreads", maximumThreads, "a count >= 1")
        try require(maximumConcurrentUploads >= 1, "maximumConcurrentUploads", maximumConcurrentUploads, "a count >= 1")
        try require(rememberedAnswers >= 0, "rememberedAnswers", rememberedAnswers, "a count >= 0")
        for (field, value) in [("maximumTimedSeconds", maximumTimedSeconds), ("measurementTimeoutSeconds", measurementTimeoutSeconds),
                               ("uploadTimeoutSeconds", uploadTimeoutSeconds), ("idleTimeoutSeconds", idleTimeoutSeconds),
                               ("shutdownGraceSeconds", shutdownGraceSeconds), ("rememberSeconds", rememberSeconds)] {
            try require(value > 0 && value.isFinite, field, value, "a positive number of seconds")
        }
    }

    /// `policy` (the agent's, with the request's overrides) within these limits, and a note for
    /// every value the request asked for that was lowered.
    func clamp(_ policy: MeasurementPolicy, threads: Int, request: MeasureRequest) -> (MeasurementPolicy, threads: Int, adjustments: [String]) {
        var policy = policy, threads = threads, adjustments: [String] = []
        func note(_ name: String, _ asked: CustomStringConvertible?, _ used: CustomStringConvertible) {
            if let asked { adjustments.append("\(name)=\(asked) lowered to this agent's maximum \(used)") }
        }
        if policy.warmupRuns > maximumWarmupRuns {
            note("warmup", request.warmupRuns, maximumWarmupRuns)
            policy.warmupRuns = maximumWarmupRuns
        }
        if policy.maximumRuns > maximumRuns {
            note("max_runs", request.maximumRuns, maximumRuns)
            policy.maximumRuns = maximumRuns
        }
        if policy.minimumRuns > policy.maximumRuns {
            note("min_runs", request.minimumRuns, policy.maximumRuns)
            policy.minimumRuns = policy.maximumRuns
        }
        if policy.maximumSeconds > maximumTimedSeconds {
            note("max_seconds", request.maximumSeconds, maximumTimedSeconds)
            policy.maximumSeconds = maximumTimedSeconds
        }
        if threads > maximumThreads {
            note("threads", request.threads, maximumThreads)
            threads = maximumThreads
        }
        return (policy, threads, adjustments)
    }
}
