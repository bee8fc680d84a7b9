import Foundation

/// What a study is, as stored: its name, objectives and free-form attributes
/// (the search space as JSON, the trial budget, the sampler name...).
public struct StudyRecord: Codable, Hashable, Sendable, Identifiable {
    public var id: Int
    public var name: String
    public var directions: [StudyDirection]
    public var attributes: [String: String]
    public var createdAt: Date

    public init(id: Int, name: String, directions: [StudyDirection], attributes: [String: String] = [:], createdAt: Date = Date()) {
        self.id = id
        self.name = name
        self.directions = directions
        self.attributes = attributes
        self.createdAt = createdAt
    }
}

/// Errors every storage reports the same way, so callers need not know the engine.
public enum StudyStorageError: Error, Equatable, Sendable, CustomStringConvertible {
    case studyNotFound(name: String)
    case studyAlreadyExists(name: String)
    case trialNotFound(id: Int)
    /// The trial is already finished (complete, pruned or failed) and cannot change.
    case trialAlreadyFinished(id: Int, state: TrialState)
    /// The stored schema is newer than this build understands.
    case schemaTooNew(found: Int, supported: Int)

    public var description: String {
        switch self {
        case .studyNotFound(let name): "study '\(name)' does not exist"
        case .studyAlreadyExists(let name): "study '\(name)' already exists"
        case .trialNotFound(let id): "trial id \(id) does not exist"
        case .trialAlreadyFinished(let id, let state): "trial id \(id) is already \(state.rawValue) and cannot change"
        case .schemaTooNew(let found, let supported):
            "the study database has schema version \(found), newer than this EdgeNAS supports (\(supported)); upgrade EdgeNAS"
        }
    }
}

/// Persistence of studies and trials. Implementations: in memory (Search), SQLite and
/// PostgreSQL (Storage). Every method is one atomic step, so that any number of workers
/// on any number of machines can share a study; in particular `finishTrial` commits the
/// state and values together, so a finished result is never half written.
public protocol StudyStorage: Sendable {
    func createStudy(name: String, directions: [StudyDirection], attributes: [String: String]) async throws -> StudyRecord
    func study(named name: String) async throws -> StudyRecord
    func studies() async throws -> [StudyRecord]
    func deleteStudy(named name: String) async throws
    func setStudyAttribute(studyID: Int, key: String, value: String) async throws

    /// Adds a `waiting` trial with fixed parameters (a baseline, a user's guess).
    func enqueueTrial(studyID: Int, parameters: [String: ParameterValue]) async throws -> FrozenTrial
    /// Starts a trial: takes the oldest `waiting` trial if any, else creates a new one with
    /// the next number. The returned trial is `running` with a fresh heartbeat.
    func startTrial(studyID: Int) async throws -> FrozenTrial
    /// Starts the oldest `waiting` trial, if any, and never creates one: how a process claims
    /// the next job of a queue of fixed jobs (`running`, with a fresh heartbeat; nil when none waits).
    func startWaitingTrial(studyID: Int) async throws -> FrozenTrial?
    func setParameters(trialID: Int, _ parameters: [String: ParameterValue]) async throws
    func reportIntermediate(trialID: Int, step: Int, value: Double) async throws
    func setUserAttribute(trialID: Int, key: String, value: String) async throws
    /// Finishes a running trial in one transaction: state, values, constraints, end time.
    func finishTrial(trialID: Int, state: TrialState, values: [Double]?, constraints: [Double]?) async throws
    func heartbeat(trialID: Int) async throws
    /// Marks `running` trials whose last heartbeat is older than `timeout` as failed and,
    /// while their retry count is below `maxRetries`, enqueues their parameters again.
    /// Returns the ids of the trials it failed.
    func failStaleTrials(studyID: Int, timeout: TimeInterval, maxRetries: Int) async throws -> [Int]
    /// Trials of a study ordered by number, optionally only those in the given states.
    func trials(studyID: Int, states: Set<TrialState>?) async throws -> [FrozenTrial]
}

/// A storage URL with its password hidden ("***"): the only form in which a storage URL may be
/// printed, logged or put in an error.
public func redactingPassword(in url: String) -> String {
    guard var components = URLComponents(string: url), components.password != nil else { return url }
    components.password = "***"
    return components.string ?? url
}
