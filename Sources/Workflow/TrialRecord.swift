import Foundation
import Search

/// What the search pipeline measured and estimated for one trial: written once, as the trial's
/// user attribute `record` (JSON), before its objective values; read back by the report, the
/// dashboard, the retraining stage and a rerun (one typed value instead of a dozen strings and
/// positional objective values).
public struct TrialRecord: Codable, Hashable, Sendable {
    /// `DetectorArchitecture.description`.
    public var architecture: String
    /// Median latency on the latency backend, and its interquartile range.
    public var latencyMilliseconds: Double
    public var latencyInterquartileRange: Double
    public var latencyBackend: String
    public var parameters: Int
    /// Peak activation memory, float32.
    public var memoryMegabytes: Double
    public var multiplyAccumulates: Int
    /// The estimator's name and score (AP@0.5 for the AP-based estimators).
    public var estimator: String
    public var score: Double
    /// AP@0.5 the estimate measured at its fidelity, if any.
    public var ap50: Double?
    public var estimateSeconds: Double
    public var estimateEpochs: Int
    /// The earlier trial of the same architecture whose results this one took (nil: it was
    /// measured and estimated itself).
    public var duplicateOf: Int?

    public static let attribute = "record"

    public init(architecture: String, latencyMilliseconds: Double, latencyInterquartileRange: Double, latencyBackend: String,
                parameters: Int, memoryMegabytes: Double, multiplyAccumulates: Int, estimator: String, score: Double, ap50: Double?,
                estimateSeconds: Double, estimateEpochs: Int, duplicateOf: Int? = nil) {
        self.architecture = architecture
        self.latencyMilliseconds = latencyMilliseconds
        self.latencyInterquartileRange = latencyInterquartileRange
        self.latencyBackend = latencyBackend
        self.parameters = parameters
        self.memoryMegabytes = memoryMegabytes
        self.multiplyAccumulates = multiplyAccumulates
        self.estimator = estimator
        self.score = score
        self.ap50 = ap50
        self.estimateSeconds = estimateSeconds
        self.estimateEpochs = estimateEpochs
        self.duplicateOf = duplicateOf
    }

    /// The record the pipeline wrote on `trial`; nil for a trial it did not evaluate (failed,
    /// running, or another program's).
    public init?(_ trial: FrozenTrial) {
        guard let text = trial.userAttributes[Self.attribute], let record = try? decodeJSONText(Self.self, text) else { return nil }
        self = record
    }
}
