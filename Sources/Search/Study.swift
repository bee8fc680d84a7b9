import Foundation
import Logging

/// What an objective returns: one value per study direction and, optionally, constraint
/// values (feasible when all are <= 0).
public struct Evaluation: Hashable, Sendable, ExpressibleByArrayLiteral {
    public var values: [Double]
    public var constraints: [Double]?

    public init(values: [Double], constraints: [Double]? = nil) {
        self.values = values
        self.constraints = constraints
    }

    public init(arrayLiteral elements: Double...) {
        self.init(values: elements)
    }
}

/// Thrown by an objective to stop a trial that its pruner says is hopeless.
public struct TrialPruned: Error, Sendable {
    public init() {}
}

public enum StudyError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongValueCount(trial: Int, expected: Int, got: Int)
    case nonFiniteValue(trial: Int, value: Double)
    case noDirections
    case directionsMismatch(study: String, stored: [StudyDirection], requested: [StudyDirection])
    case invalidEnqueuedParameters(SearchSpaceError)
    /// `tell(_:state:)` takes `.pruned` or `.failed`; complete trials need their values.
    case notAFailureState(TrialState)

    public var description: String {
        switch self {
        case .wrongValueCount(let t, let e, let g): "trial \(t): expected \(e) objective value(s), got \(g)"
        case .nonFiniteValue(let t, let v): "trial \(t): objective value \(v) is not finite"
        case .noDirections: "a study needs at least one objective direction"
        case .directionsMismatch(let s, let stored, let requested):
            "study '\(s)' was created with directions \(stored.map(\.rawValue)), not \(requested.map(\.rawValue))"
        case .invalidEnqueuedParameters(let error): "enqueued parameters are invalid: \(error)"
        case .notAFailureState(let state): "a trial can be told '\(state.rawValue)' only with its values; expected pruned or failed"
        }
    }
}

/// A running trial, as handed to an objective.
public struct TrialHandle: Sendable {
    public let id: Int
    public let number: Int
    public let parameters: [String: ParameterValue]
    public let study: Study

    public subscript(name: String) -> ParameterValue? { parameters[name] }

    /// Records an intermediate objective value (for example validation mAP after an epoch).
    public func report(step: Int, value: Double) async throws {
        try await study.storage.reportIntermediate(trialID: id, step: step, value: value)
    }

    /// Whether the study's pruner says to stop this trial now.
    public func shouldPrune() async throws -> Bool {
        try await study.shouldPrune(trialID: id)
    }

    public func setUserAttribute(_ key: String, _ value: String) async throws {
        try await study.storage.setUserAttribute(trialID: id, key: key, value: value)
    }
}

/// An optimisation study: trials proposed by a sampler, evaluated by the caller, kept in a
/// storage that any number of workers may share.
public final class Study: Sendable {
    public let name: String
    public let studyID: Int
    /// Whether this call created the study (false: it existed, or another process that raced
    /// this one created it first), so exactly one process sets it up.
    public let wasCreated: Bool
    public let directions: [StudyDirection]
    public let space: SearchSpace
    public let storage: any StudyStorage
    public let sampler: any Sampler
    public let pruner: (any Pruner)?
    public let seed: UInt64
    /// Trials without a heartbeat for this long are failed (and re-queued) on `ask`; nil
    /// disables the check (single-process studies).
    public let staleTrialTimeout: TimeInterval?
    public let maxRetries: Int
    private let logger: Logger

    /// Creates the study in `storage`, or loads it when it exists (another worker made it).
    public init(
        name: String, space: SearchSpace, directions: [StudyDirection], storage: any StudyStorage,
        sampler: any Sampler = TPESampler(), pruner: (any Pruner)? = nil, seed: UInt64 = 0,
        staleTrialTimeout: TimeInterval? = nil, maxRetries: Int = 1,
        logger: Logger = Logger(label: "edgenas.search")
    ) async throws {
        guard !directions.isEmpty else { throw StudyError.noDirections }
        let record: StudyRecord
        do {
            record = try await storage.createStudy(name: name, directions: directions, attributes: [
                "search_space": space.jsonString(), "sampler": sampler.name, "seed": String(seed),
            ])
            wasCreated = true
        } catch StudyStorageError.studyAlreadyExists {
            wasCreated = false
            record = try await storage.study(named: name)
            guard record.directions == directions else {
                throw StudyError.directionsMismatch(study: name, stored: record.directions, requested: directions)
            }
        }
        self.name = name
        self.studyID = record.id
        self.directions = directions
        self.space = space
        self.storage = storage
        self.sampler = sampler
        self.pruner = pruner
        self.seed = seed
        self.staleTrialTimeout = staleTrialTimeout
        self.maxRetries = maxRetries
        self.logger = logger
    }

    /// Adds a trial with fixed parameters, run before any sampled one (a baseline). A
    /// partial assignment is completed by the sampler.
    @discardableResult
    public func enqueue(_ parameters: [String: ParameterValue]) async throws -> FrozenTrial {
        for (name, value) in parameters {
            guard let parameter = space[name] else {
                throw StudyError.invalidEnqueuedParameters(.unexpectedParameter(name: name))
            }
            guard parameter.distribution.contains(value) else {
                throw StudyError.invalidEnqueuedParameters(.valueOutOfDistribution(parameter: name, value: value))
            }
        }
        return try await storage.enqueueTrial(studyID: studyID, parameters: parameters)
    }

    /// Starts a trial: an enqueued one if any, else a new one, and gives it parameters.
    public func ask() async throws -> TrialHandle {
        if let timeout = staleTrialTimeout {
            let failed = try await storage.failStaleTrials(studyID: studyID, timeout: timeout, maxRetries: maxRetries)
            if !failed.isEmpty { logger.warning("failed stale trials (no heartbeat for \(timeout) s): \(failed)") }
        }
        let trial = try await storage.startTrial(studyID: studyID)
        let history = try await storage.trials(studyID: studyID, states: nil).filter { $0.id != trial.id }
        let fixed = trial.parameters
        var parameters = space.activeAssignment(fixed)
        if (try? space.validate(parameters)) == nil {
            let context = SamplingContext(trialNumber: trial.number, seed: seed, directions: directions, trials: history, fixed: fixed)
            do {
                var proposed = try sampler.sample(space: space, context: context)
                for (name, value) in fixed { proposed[name] = value }
                parameters = space.activeAssignment(proposed)
                try space.validate(parameters)
            } catch {
                try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "\(error)")
                try await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
                throw error
            }
        }
        try await storage.setParameters(trialID: trial.id, parameters)
        return TrialHandle(id: trial.id, number: trial.number, parameters: parameters, study: self)
    }

    /// Finishes a trial with its objective values (and constraints).
    public func tell(_ trial: TrialHandle, _ evaluation: Evaluation) async throws {
        guard evaluation.values.count == directions.count else {
            throw StudyError.wrongValueCount(trial: trial.number, expected: directions.count, got: evaluation.values.count)
        }
        if let bad = evaluation.values.first(where: { !$0.isFinite }) {
            try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "objective value \(bad) is not finite")
            try await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
            throw StudyError.nonFiniteValue(trial: trial.number, value: bad)
        }
        try await storage.finishTrial(trialID: trial.id, state: .complete, values: evaluation.values, constraints: evaluation.constraints)
    }

    /// Finishes a trial as pruned or failed. A pruned trial keeps its last intermediate
    /// value as its value for single-objective studies (as Optuna does).
    public func tell(_ trial: TrialHandle, state: TrialState) async throws {
        guard state == .pruned || state == .failed else { throw StudyError.notAFailureState(state) }
        var values: [Double]? = nil
        if state == .pruned, directions.count == 1,
           let current = try await storage.trials(studyID: studyID, states: [.running]).first(where: { $0.id == trial.id }),
           let last = current.intermediateValues.max(by: { $0.key < $1.key }) {
            values = [last.value]
        }
        try await storage.finishTrial(trialID: trial.id, state: state, values: values, constraints: nil)
    }

    /// Whether the pruner says to stop the trial (always false without a pruner or for
    /// multi-objective studies, where intermediate values are ambiguous).
    public func shouldPrune(trialID: Int) async throws -> Bool {
        guard let pruner, directions.count == 1 else { return false }
        let all = try await storage.trials(studyID: studyID, states: nil)
        guard let trial = all.first(where: { $0.id == trialID }) else { throw StudyStorageError.trialNotFound(id: trialID) }
        return pruner.shouldPrune(trial: trial, studyTrials: all, direction: directions[0])
    }

    /// Runs trials until `nTrials` have been started by this call, `timeout` has elapsed,
    /// or the space is exhausted. `workers` trials run concurrently in this process.
    /// Objective errors other than `TrialPruned` fail the trial; with `catchErrors` false
    /// they are then rethrown and stop the loop.
    public func optimize(
        nTrials: Int? = nil, timeout: Duration? = nil, workers: Int = 1, catchErrors: Bool = false,
        heartbeatInterval: Duration? = nil,
        objective: @escaping @Sendable (TrialHandle) async throws -> Evaluation
    ) async throws {
        let budget = TrialBudget(limit: nTrials, deadline: timeout.map { ContinuousClock.now + $0 })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, workers) {
                group.addTask {
                    while await budget.take() {
                        let trial: TrialHandle
                        do { trial = try await self.ask() } catch SamplerError.searchSpaceExhausted(let points) {
                            self.logger.info("search space exhausted after \(points) points; stopping")
                            await budget.stop()
                            return
                        }
                        try await self.run(trial, heartbeatInterval: heartbeatInterval, catchErrors: catchErrors, objective: objective)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func run(
        _ trial: TrialHandle, heartbeatInterval: Duration?, catchErrors: Bool,
        objective: @Sendable (TrialHandle) async throws -> Evaluation
    ) async throws {
        let heart: Task<Void, Never>? = heartbeatInterval.map { interval in
            Task { [storage] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    try? await storage.heartbeat(trialID: trial.id)
                }
            }
        }
        defer { heart?.cancel() }
        do {
            do {
                let evaluation = try await objective(trial)
                try await tell(trial, evaluation)
            } catch is TrialPruned {
                try await tell(trial, state: .pruned)
            } catch let error as StudyError {
                // A non-finite value already failed the trial in `tell`; a wrong value count
                // left it running, so fail it here rather than leave it to the heartbeat check.
                if case .wrongValueCount = error {
                    try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "\(error)")
                    try await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
                }
                logger.warning("trial \(trial.number) failed: \(error)")
                if !catchErrors { throw error }
            } catch let error as StudyStorageError {
                throw error
            } catch {
                try await storage.setUserAttribute(trialID: trial.id, key: "error", value: "\(error)")
                try await tell(trial, state: .failed)
                logger.warning("trial \(trial.number) failed: \(error)")
                if !catchErrors { throw error }
            }
        } catch StudyStorageError.trialAlreadyFinished(_, let state) {
            // Another worker took the trial over after this one missed its heartbeats (and
            // re-queued it): what this worker found is dropped, and it moves on.
            logger.warning("trial \(trial.number) was finished as \(state.rawValue) elsewhere while this worker ran it; its result here is dropped")
        }
    }

    // MARK: results

    public func trials(states: Set<TrialState>? = nil) async throws -> [FrozenTrial] {
        try await storage.trials(studyID: studyID, states: states)
    }

    /// The best complete trial of a single-objective study: feasible first, then by value.
    public func bestTrial() async throws -> FrozenTrial? {
        let complete = try await trials(states: [.complete]).filter { $0.values?.count == 1 }
        let sign = directions[0] == .minimize ? 1.0 : -1.0
        return complete.min { a, b in
            if a.isFeasible != b.isFeasible { return a.isFeasible }
            return sign * a.values![0] < sign * b.values![0]
        }
    }

    /// The Pareto-optimal complete trials (feasible ones when any trial is feasible).
    public func bestTrials() async throws -> [FrozenTrial] {
        let complete = try await trials(states: [.complete]).filter { $0.values?.count == directions.count }
        let feasible = complete.filter(\.isFeasible)
        let pool = feasible.isEmpty ? complete : feasible
        let losses = pool.map { lossVector($0.values!, directions) }
        return Pareto.nonDominatedIndices(losses).map { pool[$0] }
    }
}

/// Turns objective values into losses to minimise (maximised objectives are negated).
public func lossVector(_ values: [Double], _ directions: [StudyDirection]) -> [Double] {
    zip(values, directions).map { $1 == .minimize ? $0 : -$0 }
}

/// Shared trial counter and deadline for the workers of one `optimize` call.
private actor TrialBudget {
    private var remaining: Int?
    private let deadline: ContinuousClock.Instant?
    private var stopped = false

    init(limit: Int?, deadline: ContinuousClock.Instant?) {
        remaining = limit
        self.deadline = deadline
    }

    func take() -> Bool {
        if stopped { return false }
        if let deadline, ContinuousClock.now >= deadline { return false }
        if let left = remaining {
            if left <= 0 { return false }
            remaining = left - 1
        }
        return true
    }

    func stop() { stopped = true }
}
