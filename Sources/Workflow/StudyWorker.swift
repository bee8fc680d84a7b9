import Foundation
import Logging
import Search

/// What a worker needs to join a study, stored as the study's attributes so that a worker on
/// any machine rebuilds the same study from the storage alone.
public struct StudySettings: Sendable, Equatable {
    public var space: SearchSpace
    public var directions: [StudyDirection]
    /// Complete trials the study wants; workers stop once the study has them.
    public var budget: Int
    public var samplerName: String
    public var seed: UInt64
    /// The external objective (see `CommandObjective`); nil when the caller supplies one.
    public var objectiveCommand: String?
    public var objectiveTimeoutSeconds: Double?

    public init(space: SearchSpace, directions: [StudyDirection], budget: Int, samplerName: String = "auto", seed: UInt64 = 0,
                objectiveCommand: String? = nil, objectiveTimeoutSeconds: Double? = nil) {
        self.space = space
        self.directions = directions
        self.budget = budget
        self.samplerName = samplerName
        self.seed = seed
        self.objectiveCommand = objectiveCommand
        self.objectiveTimeoutSeconds = objectiveTimeoutSeconds
    }

    enum Key {
        static let space = "search_space", sampler = "sampler", seed = "seed", budget = "budget"
        static let command = "objective_command", timeout = "objective_timeout_seconds"
    }

    /// Reads the settings back from a stored study, naming the attribute that is missing or wrong.
    public init(record: StudyRecord) throws(StudyWorkerError) {
        func attribute(_ key: String) throws(StudyWorkerError) -> String {
            guard let value = record.attributes[key] else { throw .missingAttribute(study: record.name, key: key) }
            return value
        }
        do {
            space = try SearchSpace.decode(json: Data(try attribute(Key.space).utf8))
        } catch let error as StudyWorkerError {
            throw error
        } catch {
            throw .invalidAttribute(study: record.name, key: Key.space, reason: "\(error)")
        }
        guard let budget = Int(try attribute(Key.budget)), budget > 0 else {
            throw .invalidAttribute(study: record.name, key: Key.budget, reason: "expected a positive integer")
        }
        guard let seed = UInt64(try attribute(Key.seed)) else {
            throw .invalidAttribute(study: record.name, key: Key.seed, reason: "expected a non-negative integer")
        }
        directions = record.directions
        self.budget = budget
        self.seed = seed
        samplerName = try attribute(Key.sampler)
        objectiveCommand = record.attributes[Key.command]
        objectiveTimeoutSeconds = record.attributes[Key.timeout].flatMap(Double.init)
    }

    func sampler() throws -> any Sampler { try SamplerCatalog.sampler(named: samplerName, budget: budget) }
}

public enum StudyWorkerError: Error, Equatable, CustomStringConvertible {
    case missingAttribute(study: String, key: String)
    case invalidAttribute(study: String, key: String, reason: String)
    case noObjective(study: String)
    case tooManyFailures(study: String, count: Int, lastError: String)

    public var description: String {
        switch self {
        case .missingAttribute(let study, let key):
            "study '\(study)' has no '\(key)' attribute; create it with 'edgenas study create'"
        case .invalidAttribute(let study, let key, let reason):
            "study '\(study)': attribute '\(key)' is invalid: \(reason)"
        case .noObjective(let study):
            "study '\(study)' has no objective command; pass --command or create the study with one"
        case .tooManyFailures(let study, let count, let lastError):
            "stopping: \(count) trials of study '\(study)' failed in a row on this worker; last error: \(lastError)"
        }
    }
}

/// Creates studies and runs trials of them until their budget of complete trials is met.
/// Any number of workers, in any number of processes and machines, may run one study: the
/// storage numbers trials atomically, heartbeats mark a dead worker's trial failed and
/// re-queue it, and each result is written in one transaction.
public struct StudyWorker: Sendable {
    public let storage: any StudyStorage
    public let studyName: String
    public var heartbeatInterval: Duration = .seconds(5)
    /// A running trial without a heartbeat for this long belongs to a dead worker.
    public var staleTrialTimeout: TimeInterval = 30
    public var maxRetries = 1
    /// This many failed trials in a row stop the worker (a broken objective, not bad luck).
    public var maxConsecutiveFailures = 5
    private let logger = Logger(label: "edgenas.worker")

    public init(storage: any StudyStorage, studyName: String) {
        self.storage = storage
        self.studyName = studyName
    }

    /// Creates the study with its settings (and optionally enqueues a baseline trial).
    @discardableResult
    public static func create(
        storage: any StudyStorage, name: String, settings: StudySettings, baseline: [String: ParameterValue]? = nil
    ) async throws -> StudyRecord {
        _ = try SamplerCatalog.sampler(named: settings.samplerName, budget: settings.budget)
        var attributes = [
            StudySettings.Key.space: settings.space.jsonString(), StudySettings.Key.sampler: settings.samplerName,
            StudySettings.Key.seed: String(settings.seed), StudySettings.Key.budget: String(settings.budget),
        ]
        attributes[StudySettings.Key.command] = settings.objectiveCommand
        attributes[StudySettings.Key.timeout] = settings.objectiveTimeoutSeconds.map { String($0) }
        let record = try await storage.createStudy(name: name, directions: settings.directions, attributes: attributes)
        if let baseline {
            try settings.space.validate(baseline)
            _ = try await storage.enqueueTrial(studyID: record.id, parameters: baseline)
        }
        return record
    }

    /// Runs trials until the study has `budget` complete trials. Uses the study's objective
    /// command unless `objective` is given. Returns the number of trials this worker finished.
    @discardableResult
    public func run(
        objective: (@Sendable (TrialHandle) async throws -> Evaluation)? = nil,
        progress: @Sendable (_ complete: Int, _ budget: Int) -> Void = { _, _ in }
    ) async throws -> Int {
        let record = try await storage.study(named: studyName)
        let settings = try StudySettings(record: record)
        let evaluate: @Sendable (TrialHandle) async throws -> Evaluation
        if let objective {
            evaluate = objective
        } else if let command = settings.objectiveCommand {
            let external = CommandObjective(command: command, timeoutSeconds: settings.objectiveTimeoutSeconds)
            evaluate = { trial in try await external.evaluate(parameters: trial.parameters, trialNumber: trial.number) }
        } else {
            throw StudyWorkerError.noObjective(study: studyName)
        }
        let study = try await Study(
            name: studyName, space: settings.space, directions: settings.directions, storage: storage,
            sampler: settings.sampler(), seed: settings.seed, staleTrialTimeout: staleTrialTimeout, maxRetries: maxRetries,
            logger: logger)

        var finishedHere = 0, failuresInARow = 0
        while true {
            let trials = try await storage.trials(studyID: record.id, states: [.complete, .running, .waiting])
            let complete = trials.filter { $0.state == .complete }.count
            progress(complete, settings.budget)
            if complete >= settings.budget { return finishedHere }
            if trials.count >= settings.budget {
                // The remaining trials are running elsewhere; wait, and take over any whose
                // worker stopped beating.
                try await Task.sleep(for: heartbeatInterval)
                _ = try await storage.failStaleTrials(studyID: record.id, timeout: staleTrialTimeout, maxRetries: maxRetries)
                continue
            }
            let failure = FailureRecord()
            try await study.optimize(nTrials: 1, catchErrors: true, heartbeatInterval: heartbeatInterval) { trial in
                do {
                    return try await evaluate(trial)
                } catch is TrialPruned {
                    throw TrialPruned()
                } catch {
                    failure.record(error)
                    throw error
                }
            }
            finishedHere += 1
            if let error = failure.error {
                failuresInARow += 1
                if failuresInARow >= maxConsecutiveFailures {
                    throw StudyWorkerError.tooManyFailures(study: studyName, count: failuresInARow, lastError: error)
                }
            } else {
                failuresInARow = 0
            }
        }
    }
}

/// The error of this worker's last objective call, if it failed.
private final class FailureRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?

    func record(_ error: any Error) { lock.withLock { message = "\(error)" } }
    var error: String? { lock.withLock { message } }
}
