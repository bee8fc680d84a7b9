import Foundation

/// Whether an objective is to be made as small or as large as possible.
public enum StudyDirection: String, Codable, Hashable, Sendable {
    case minimize
    case maximize
}

/// The life cycle of a trial. `waiting` trials were enqueued (a baseline, a re-queued
/// trial of a dead worker) and are handed out before any new sample.
public enum TrialState: String, Codable, Hashable, Sendable, CaseIterable {
    case waiting
    case running
    case complete
    case pruned
    case failed

    public var isFinished: Bool { self == .complete || self == .pruned || self == .failed }
}

/// A trial as stored: everything a sampler, a report or another worker may read.
///
/// `id` is the storage's key (unique across studies); `number` is the trial's position in
/// its study (0, 1, 2, ...), assigned atomically by the storage so that parallel workers
/// never share one.
public struct FrozenTrial: Codable, Hashable, Sendable, Identifiable {
    public var id: Int
    public var number: Int
    public var state: TrialState
    /// Sampled parameters, by name.
    public var parameters: [String: ParameterValue]
    /// Objective values, one per study direction; nil until the trial completes.
    public var values: [Double]?
    /// Constraint values: a trial is feasible when every value is <= 0.
    public var constraints: [Double]?
    /// Intermediate objective values reported during the trial (for pruning), by step.
    public var intermediateValues: [Int: Double]
    /// Free-form attributes (estimator cost, latency statistics, error message...).
    public var userAttributes: [String: String]
    public var startedAt: Date?
    public var completedAt: Date?
    /// Last sign of life from the worker running the trial.
    public var heartbeatAt: Date?
    /// How many times this trial's parameters were re-queued after a worker died.
    public var retryCount: Int

    public init(
        id: Int, number: Int, state: TrialState, parameters: [String: ParameterValue] = [:],
        values: [Double]? = nil, constraints: [Double]? = nil, intermediateValues: [Int: Double] = [:],
        userAttributes: [String: String] = [:], startedAt: Date? = nil, completedAt: Date? = nil,
        heartbeatAt: Date? = nil, retryCount: Int = 0
    ) {
        self.id = id
        self.number = number
        self.state = state
        self.parameters = parameters
        self.values = values
        self.constraints = constraints
        self.intermediateValues = intermediateValues
        self.userAttributes = userAttributes
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.heartbeatAt = heartbeatAt
        self.retryCount = retryCount
    }

    /// Feasible when no constraint was given or every constraint value is <= 0.
    public var isFeasible: Bool { (constraints ?? []).allSatisfy { $0 <= 0 } }
}
