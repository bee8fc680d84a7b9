import Foundation
import Hardware
import Logging
import Search
import Vision

public enum PipelineError: Error, Equatable, CustomStringConvertible {
    case emptySplit(key: String, path: String)
    case studyMismatch(study: String, key: String, stored: String, config: String)
    case tooManyFailures(study: String, count: Int, lastError: String)
    case noCompleteTrials(study: String)

    public var description: String {
        switch self {
        case .emptySplit(let key, let path): "\(key): the split in \(path) has no usable images; expected at least one"
        case .studyMismatch(let study, let key, let stored, let config):
            "study '\(study)' exists with \(key) = \(stored), but the config says \(config); "
                + "use another study name (key 'name') or delete the study to start over"
        case .tooManyFailures(let study, let count, let lastError):
            "stopping: \(count) trials of study '\(study)' failed in a row; last error: \(lastError)"
        case .noCompleteTrials(let study): "study '\(study)' has no complete trial to report"
        }
    }
}

/// The result of fully retraining one candidate after a low-fidelity search, kept as the
/// study attribute `retrained.<trial number>` (finished trials cannot change).
public struct RetrainedResult: Codable, Hashable, Sendable {
    public var trialNumber: Int
    public var architecture: String
    public var ap50: Double
    public var seconds: Double
    public var epochs: Int

    public init(trialNumber: Int, architecture: String, ap50: Double, seconds: Double, epochs: Int) {
        self.trialNumber = trialNumber
        self.architecture = architecture
        self.ap50 = ap50
        self.seconds = seconds
        self.epochs = epochs
    }

    public static let attributePrefix = "retrained."
}

/// The study attributes the pipeline writes, so a rerun, `edgenas report` and the dashboard
/// read the same facts.
public enum PipelineAttribute {
    public static let kind = "edgenas_pipeline"
    public static let estimator = "estimator", estimatorReason = "estimator_reason", samplerReason = "sampler_reason"
    public static let objectives = "objectives", baseModel = "base_model", baselineTrial = "baseline_trial"
    public static let budgetTrials = "budget_trials", budgetHours = "budget_hours", latencyBackend = "latency_backend"
    public static let fullTrainingSeconds = "full_training_seconds_estimate", searchSeconds = "search_seconds"
    public static let dataset = "dataset", fullEpochs = "full_epochs"
    /// Optional results of other stages, as JSON (written by the profile and selection stages).
    public static let layerProfile = "layer_profile", estimatorSelection = "estimator_selection"
    public static let selectionSeconds = "selection_seconds"
}

/// The parts of a search that do real work, behind protocols so tests and other backends plug in.
public struct PipelineComponents: Sendable {
    public var latency: any LatencyBackend
    /// The estimator of a name from `EstimatorCatalog.names`.
    public var estimator: @Sendable (String) throws -> any PerformanceEstimator
    /// Seconds one full training of the base model takes here (measured, for the auto plan).
    public var fullTrainingSeconds: @Sendable (DetectorArchitecture) throws -> Double
    /// Full training of a candidate, resuming from `checkpoint` when it holds one.
    public var retrain: @Sendable (DetectorArchitecture, _ checkpoint: URL?) throws -> PerformanceEstimate

    public init(
        latency: any LatencyBackend, estimator: @escaping @Sendable (String) throws -> any PerformanceEstimator,
        fullTrainingSeconds: @escaping @Sendable (DetectorArchitecture) throws -> Double,
        retrain: @escaping @Sendable (DetectorArchitecture, URL?) throws -> PerformanceEstimate
    ) {
        self.latency = latency
        self.estimator = estimator
        self.fullTrainingSeconds = fullTrainingSeconds
        self.retrain = retrain
    }
}

/// What a finished pipeline run produced.
public struct PipelineResult: Sendable {
    public var studyName: String
    public var reportDirectory: URL
    public var reportPage: URL
    public var completeTrials: Int
    public var frontTrialNumbers: [Int]
}

/// The product's main loop: plan -> search (baseline first) -> retrain the Pareto candidates
/// -> report. Everything is kept in the study storage, so running it again continues the
/// same study: finished trials and retrainings are not redone.
public struct SearchPipeline: Sendable {
    public var config: ProjectConfig
    public var storage: any StudyStorage
    public var components: PipelineComponents
    /// Where progress lines go (the CLI prints them).
    public var log: @Sendable (String) -> Void
    /// Failed trials in a row that stop the search (a broken setup, not bad luck).
    public var maxConsecutiveFailures = 5

    public init(config: ProjectConfig, storage: any StudyStorage, components: PipelineComponents,
                log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.config = config
        self.storage = storage
        self.components = components
        self.log = log
    }

    @discardableResult
    public func run() async throws -> PipelineResult {
        let study = try await openStudy()
        let plan = try await self.plan(study)
        try await search(study, estimator: plan)
        try await retrainCandidates(study, estimatorIsFull: plan.isFullFidelity)
        let record = try await storage.study(named: config.name)
        let trials = try await storage.trials(studyID: record.id, states: nil)
        let output = URL(fileURLWithPath: config.output)
        let report = try StudyReport(studies: [StudySnapshot(record: record, trials: trials)]).write(to: output)
        let front = try await study.bestTrials().map(\.number).sorted()
        log("report: \(report.path)")
        return PipelineResult(studyName: config.name, reportDirectory: output, reportPage: report,
                              completeTrials: trials.filter { $0.state == .complete }.count, frontTrialNumbers: front)
    }

    // MARK: study

    /// Creates the study (with the baseline enqueued as its first trial) or opens the one a
    /// previous run left, checking it was made from the same space and objectives.
    func openStudy() async throws -> Study {
        let sampler = try SamplerCatalog.sampler(named: config.sampler, budget: config.budget.trials)
        let existing = try? await storage.study(named: config.name)
        if let existing {
            let stored = existing.attributes["search_space"] ?? ""
            guard stored == config.searchSpace.jsonString() else {
                throw PipelineError.studyMismatch(study: config.name, key: "search_space", stored: stored, config: config.searchSpace.jsonString())
            }
            let objectives = config.objectives.map(\.rawValue).joined(separator: ",")
            if let storedObjectives = existing.attributes[PipelineAttribute.objectives], storedObjectives != objectives {
                throw PipelineError.studyMismatch(study: config.name, key: "objectives", stored: storedObjectives, config: objectives)
            }
        }
        let study = try await Study(name: config.name, space: config.searchSpace, directions: config.directions,
                                    storage: storage, sampler: sampler, seed: config.seed,
                                    logger: Logger(label: "edgenas.search"))
        if existing == nil {
            let attributes = [
                PipelineAttribute.kind: "1",
                PipelineAttribute.objectives: config.objectives.map(\.rawValue).joined(separator: ","),
                PipelineAttribute.baseModel: config.baseModel.description,
                PipelineAttribute.budgetTrials: config.budget.trials.map(String.init) ?? "",
                PipelineAttribute.budgetHours: config.budget.hours.map { String($0) } ?? "",
                PipelineAttribute.latencyBackend: components.latency.name,
                PipelineAttribute.dataset: "\(config.dataset.format.rawValue):\(config.dataset.path)",
                PipelineAttribute.fullEpochs: String(config.training.epochs),
            ]
            for (key, value) in attributes { try await storage.setStudyAttribute(studyID: study.studyID, key: key, value: value) }
            let baseline = try await study.enqueue(ArchitectureSpace.parameters(of: config.baseModel, in: config.searchSpace))
            try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.baselineTrial, value: String(baseline.number))
            log("study '\(config.name)' created in \(config.storage); baseline \(config.baseModel) enqueued as trial \(baseline.number)")
        } else {
            let complete = try await study.trials(states: [.complete]).count
            log("study '\(config.name)' resumed from \(config.storage): \(complete) complete trials")
        }
        return study
    }

    // MARK: plan

    /// Chooses the estimator (once per study; a resumed study keeps its choice) and says why.
    func plan(_ study: Study) async throws -> any PerformanceEstimator {
        let record = try await storage.study(named: config.name)
        if let chosen = record.attributes[PipelineAttribute.estimator] {
            log("plan: estimator '\(chosen)' (chosen when the study started: \(record.attributes[PipelineAttribute.estimatorReason] ?? "-"))")
            return try components.estimator(chosen)
        }
        let (name, reason) = try await chooseEstimator(study)
        let decision = AutoSampler(budget: config.budget.trials)
            .decide(space: config.searchSpace, objectives: config.objectives.count, finishedTrials: 0)
        let samplerReason = config.sampler == "auto" ? decision.reason : "set in the config"
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.estimator, value: name)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.estimatorReason, value: reason)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.samplerReason, value: samplerReason)
        log("plan: space of \(config.searchSpace.cardinality) architectures, objectives \(config.objectives.map(\.rawValue).joined(separator: ", ")), "
            + "budget \(budgetText)")
        log("plan: estimator '\(name)', because \(reason)")
        log("plan: sampler '\(config.sampler)' starts with \(config.sampler == "auto" ? decision.sampler.name : config.sampler): \(samplerReason)")
        return try components.estimator(name)
    }

    private var budgetText: String {
        [config.budget.trials.map { "\($0) trials" }, config.budget.hours.map { String(format: "%g h", $0) }]
            .compactMap { $0 }.joined(separator: " and ")
    }

    /// `auto`: full training when the budget affords it for every trial, otherwise the
    /// short-training estimator that fits.
    private func chooseEstimator(_ study: Study) async throws -> (String, String) {
        guard config.estimator == "auto" else {
            return (config.estimator, "the config names it (\(EstimatorCatalog.summary(config.estimator, training: config.training)))")
        }
        guard let hours = config.budget.hours else {
            return ("full", "the budget sets no time limit, so every trial can afford full training (\(config.training.epochs) epochs)")
        }
        log("plan: timing the base model's training to see what the budget affords")
        let fullSeconds = try components.fullTrainingSeconds(config.baseModel)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.fullTrainingSeconds, value: String(fullSeconds))
        let affordable = hours * 3600 / fullSeconds
        if let trials = config.budget.trials, affordable >= Double(trials) {
            return ("full", String(format: "%d full trainings of about %.0f s fit in %g h", trials, fullSeconds, hours))
        }
        let trialsText = config.budget.trials.map { "\($0) trials" } ?? "the trials a search needs"
        let shortSeconds = fullSeconds * Double(config.training.shortEpochs) / Double(config.training.epochs)
        return ("short", String(format: "%@ of full training (about %.0f s each) do not fit in %g h (%.1f would); "
                                + "%d-epoch short training (about %.0f s each) does", trialsText, fullSeconds, hours, affordable,
                                config.training.shortEpochs, shortSeconds))
    }

    // MARK: search

    private func search(_ study: Study, estimator: any PerformanceEstimator) async throws {
        let record = try await storage.study(named: config.name)
        var usedSeconds = Double(record.attributes[PipelineAttribute.searchSeconds] ?? "") ?? 0
        let started = Date()
        let baseModel = config.baseModel, objectives = config.objectives, constraints = config.constraints
        let latency = components.latency
        var failuresInARow = 0
        var trialSeconds: [Double] = []
        while true {
            let trials = try await study.trials()
            let complete = trials.filter { $0.state == .complete }.count
            let elapsed = usedSeconds + Date().timeIntervalSince(started)
            if let budget = config.budget.trials, complete >= budget { break }
            if let hours = config.budget.hours, elapsed >= hours * 3600 {
                log(String(format: "search: the %g h budget is spent after %d complete trials", hours, complete))
                break
            }
            let trialStart = Date()
            let failure = FailureNote()
            try await study.optimize(nTrials: 1, catchErrors: true) { trial in
                do {
                    return try await Self.evaluate(trial, base: baseModel, objectives: objectives, constraints: constraints,
                                             latency: latency, estimator: estimator)
                } catch {
                    failure.error = "\(error)"
                    throw error
                }
            }
            let seconds = Date().timeIntervalSince(trialStart)
            trialSeconds.append(seconds)
            usedSeconds += seconds
            try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.searchSeconds, value: String(usedSeconds))
            if let error = failure.error {
                failuresInARow += 1
                log("search: trial failed: \(error)")
                if failuresInARow >= maxConsecutiveFailures {
                    throw PipelineError.tooManyFailures(study: config.name, count: failuresInARow, lastError: error)
                }
            } else {
                failuresInARow = 0
            }
            try await logProgress(study, trialSeconds: trialSeconds, usedSeconds: usedSeconds)
        }
    }

    /// One trial: the architecture, its latency on the backend, the estimator's score, and the
    /// objective values and constraints in the config's order.
    static func evaluate(
        _ trial: TrialHandle, base: DetectorArchitecture, objectives: [SearchObjective], constraints: [SearchConstraint],
        latency: any LatencyBackend, estimator: any PerformanceEstimator
    ) async throws -> Evaluation {
        let architecture = try ArchitectureSpace.architecture(trial.parameters, base: base)
        let graph = try DetectorGraph(architecture)
        let measurement = try latency.measure(architecture: architecture)
        let estimate = try estimator.estimate(architecture, trialNumber: trial.number)
        let metrics: [SearchObjective: Double] = [
            .ap50: estimate.score, .latency: measurement.median, .params: Double(graph.parameterCount),
            .memory: Double(graph.peakActivationElements * 4) / 1e6,
        ]
        let attributes: [String: String] = [
            "architecture": architecture.description, "latency_ms": String(measurement.median),
            "latency_iqr_ms": String(measurement.interquartileRange), "latency_backend": measurement.backend,
            "params": String(graph.parameterCount), "memory_mb": String(metrics[.memory]!),
            "macs": String(graph.multiplyAccumulates), "estimator": estimator.name, "score": String(estimate.score),
            "estimate_seconds": String(estimate.seconds), "estimate_epochs": String(estimate.epochs),
        ].merging(estimate.ap50.map { ["ap50": String($0)] } ?? [:]) { $1 }
        // Attributes go in before the values: a finished trial's attributes cannot change.
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { try await trial.setUserAttribute(key, value) }
        let values = objectives.map { metrics[$0]! }
        let constraintValues = constraints.flatMap { $0.values(for: metrics[$0.metric]!) }
        return Evaluation(values: values, constraints: constraintValues.isEmpty ? nil : constraintValues)
    }

    private func logProgress(_ study: Study, trialSeconds: [Double], usedSeconds: Double) async throws {
        let trials = try await study.trials()
        let complete = trials.filter { $0.state == .complete }
        let failed = trials.filter { $0.state == .failed }.count
        let front = try await study.bestTrials()
        let mean = trialSeconds.reduce(0, +) / Double(max(1, trialSeconds.count))
        var remaining: [Double] = []
        if let budget = config.budget.trials { remaining.append(Double(max(0, budget - complete.count)) * mean) }
        if let hours = config.budget.hours { remaining.append(max(0, hours * 3600 - usedSeconds)) }
        let total = config.budget.trials.map { "/\($0)" } ?? ""
        let last = trials.last { $0.state.isFinished }
        let lastText = last.map { trial -> String in
            guard trial.state == .complete, let values = trial.values else { return "trial \(trial.number) \(trial.state.rawValue)" }
            let architecture = trial.userAttributes["architecture"] ?? "?"
            return String(format: "trial %d %@: score %.4f, %.2f ms", trial.number, architecture, values[0], values[1])
        } ?? ""
        log(String(format: "search: %d%@ complete, %d failed, front %d  |  %@  |  ETA %@", complete.count, total, failed, front.count,
                   lastText, remaining.min().map(formatSeconds) ?? "?"))
    }

    // MARK: retraining

    /// After a low-fidelity search, trains the front's candidates (at most
    /// `config.retrainCandidates`, spread along the front) and the baseline fully.
    private func retrainCandidates(_ study: Study, estimatorIsFull: Bool) async throws {
        if estimatorIsFull {
            log("retrain: not needed, the search trained every trial fully")
            return
        }
        let record = try await storage.study(named: config.name)
        let front = try await study.bestTrials().sorted { ($0.values?[1] ?? 0) < ($1.values?[1] ?? 0) }
        var chosen = Self.spread(front, count: config.retrainCandidates)
        if let baselineNumber = record.attributes[PipelineAttribute.baselineTrial].flatMap(Int.init),
           !chosen.contains(where: { $0.number == baselineNumber }),
           let baseline = try await study.trials(states: [.complete]).first(where: { $0.number == baselineNumber }) {
            chosen.insert(baseline, at: 0)
        }
        let checkpoints = URL(fileURLWithPath: config.output).appendingPathComponent("checkpoints")
        for (index, trial) in chosen.enumerated() {
            let key = RetrainedResult.attributePrefix + String(trial.number)
            if record.attributes[key] != nil { continue }
            let architecture = try ArchitectureSpace.architecture(trial.parameters, base: config.baseModel)
            log("retrain \(index + 1)/\(chosen.count): trial \(trial.number) \(architecture), \(config.training.epochs) epochs")
            let estimate = try components.retrain(architecture, checkpoints.appendingPathComponent("trial-\(trial.number)"))
            let result = RetrainedResult(trialNumber: trial.number, architecture: architecture.description,
                                         ap50: estimate.score, seconds: estimate.seconds, epochs: estimate.epochs)
            let json = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
            try await storage.setStudyAttribute(studyID: study.studyID, key: key, value: json)
            log(String(format: "retrain: trial %d AP@0.5 %.4f (search score %.4f) in %@", trial.number, estimate.score,
                       trial.values?[0] ?? .nan, formatSeconds(estimate.seconds)))
        }
    }

    /// Up to `count` trials evenly spread over a front sorted by latency (both ends kept).
    static func spread(_ front: [FrozenTrial], count: Int) -> [FrozenTrial] {
        guard front.count > count else { return front }
        guard count > 1 else { return count == 1 ? [front[0]] : [] }
        let indices = (0..<count).map { Int((Double($0) * Double(front.count - 1) / Double(count - 1)).rounded()) }
        return Array(Set(indices)).sorted().map { front[$0] }
    }
}

/// Seconds as 1h02m, 3m05s or 12s.
public func formatSeconds(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return String(format: "%dh%02dm", total / 3600, total % 3600 / 60) }
    if total >= 60 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return "\(total)s"
}

/// The error message of a failed trial, carried out of the objective closure.
private final class FailureNote: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    var error: String? {
        get { lock.withLock { message } }
        set { lock.withLock { message = newValue } }
    }
}
