import Estimators
import Foundation
import Hardware
import Logging
import Randomness
import Search
import Synchronization
import Vision

public enum PipelineError: Error, Equatable, CustomStringConvertible {
    case emptySplit(key: String, path: String)
    case studyMismatch(study: String, key: String, stored: String, config: String)
    case tooManyFailures(study: String, count: Int, lastError: String)
    case noCompleteTrials(study: String)
    case noPlan(study: String)
    case unmeasuredConstraint(String, backend: String)

    public var description: String {
        switch self {
        case .emptySplit(let key, let path): "\(key): the split in \(path) has no usable images; expected at least one"
        case .studyMismatch(let study, let key, let stored, let config):
            "study '\(study)' exists with \(key) = \(stored), but the config says \(config); "
                + "use another study name (key 'name') or delete the study to start over"
        case .tooManyFailures(let study, let count, let lastError):
            "stopping: \(count) trials of study '\(study)' failed in a row; last error: \(lastError)"
        case .noCompleteTrials(let study): "study '\(study)' has no complete trial to report"
        case .noPlan(let study):
            "study '\(study)' got no plan in time: start 'edgenas search --config' with the same config, which profiles and plans it"
        case .unmeasuredConstraint(let metric, let backend):
            "constraints.\(metric): latency backend '\(backend)' does not measure it; use 'vela ACCELERATOR'"
        }
    }
}

/// What the selection's ranking gets: the references, each trained fully (a queued job,
/// `PipelineComponents.trainReference`), to score with the proxies and rank every strategy on.
public struct SelectionRequest: Sendable {
    public var references: [DetectorArchitecture]
    /// The references' trainings, one per reference.
    public var runs: [ReferenceRun]
    public var settings: SelectionSettings
    /// Where the proxies' scores are kept, so an interrupted selection resumes.
    public var cacheDirectory: URL
    public var log: @Sendable (String) -> Void
}

/// The parts of a search that do real work, behind protocols so tests and other backends plug in.
public struct PipelineComponents: Sendable {
    public var latency: any LatencyBackend
    /// The base model's layer-by-layer latency on the latency backend's runtime.
    public var profile: @Sendable (DetectorArchitecture) throws -> LayerProfileSummary
    /// The estimator of a name `EstimatorCatalog` knows; a `predictor:NAME` learns from the selection's references.
    public var estimator: @Sendable (String, EstimatorSelectionSummary?) throws -> any PerformanceEstimator
    /// Seconds one full training of the base model takes here (measured, for the auto plan).
    public var fullTrainingSeconds: @Sendable (DetectorArchitecture) throws -> Double
    /// One reference of the two-stage selection trained fully, validated after the epochs given
    /// (`SelectionSettings.validatedEpochs`), its final weights left in the directory given
    /// (`DetectorReferenceTrainer.weightsFile`) for the INT8 AP@0.5 of those that end on the
    /// front; progress lines go to the log given.
    public var trainReference: @Sendable (DetectorArchitecture, _ validatedEpochs: Set<Int>, _ weightsDirectory: URL,
                                          _ log: @escaping @Sendable (String) -> Void) throws -> ReferenceRun
    /// The two-stage selection's ranking of every strategy on the trained references.
    public var selection: @Sendable (SelectionRequest) throws -> SelectionResult
    /// Full training of a candidate, resuming from `checkpoint` when it holds one.
    public var retrain: @Sendable (DetectorArchitecture, _ checkpoint: URL?) throws -> PerformanceEstimate
    /// AP@0.5 of trained weights after INT8 quantization (nil: not measurable here).
    public var quantizedAP: @Sendable (DetectorArchitecture, _ weights: URL) throws -> Double?
    /// The clock the hours budget is spent on: the wall clock, or a test's own so that a busy
    /// machine cannot change how many trials a test's search runs.
    public var clock: @Sendable () -> Date

    public init(
        latency: any LatencyBackend, profile: @escaping @Sendable (DetectorArchitecture) throws -> LayerProfileSummary,
        estimator: @escaping @Sendable (String, EstimatorSelectionSummary?) throws -> any PerformanceEstimator,
        fullTrainingSeconds: @escaping @Sendable (DetectorArchitecture) throws -> Double,
        trainReference: @escaping @Sendable (DetectorArchitecture, Set<Int>, URL, @escaping @Sendable (String) -> Void) throws -> ReferenceRun,
        selection: @escaping @Sendable (SelectionRequest) throws -> SelectionResult,
        retrain: @escaping @Sendable (DetectorArchitecture, URL?) throws -> PerformanceEstimate,
        quantizedAP: @escaping @Sendable (DetectorArchitecture, URL) throws -> Double? = { _, _ in nil },
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.latency = latency
        self.profile = profile
        self.estimator = estimator
        self.fullTrainingSeconds = fullTrainingSeconds
        self.trainReference = trainReference
        self.selection = selection
        self.retrain = retrain
        self.quantizedAP = quantizedAP
        self.clock = clock
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

/// The product's main loop: profile the base model -> plan (with the two-stage estimator
/// selection when the budget needs it) -> search (baseline first) -> retrain the Pareto
/// candidates -> report. Everything is kept in the study storage, so running it again continues the
/// same study: finished trials and retrainings are not redone.
public struct SearchPipeline: Sendable {
    public var config: ProjectConfig
    public var storage: any StudyStorage
    public var components: PipelineComponents
    /// Where progress lines go (the CLI prints them).
    public var log: @Sendable (String) -> Void
    /// Failed trials in a row that stop the search (a broken setup, not bad luck).
    public var maxConsecutiveFailures = 5
    /// A running trial beats this often; one silent for `staleTrialTimeout` seconds belongs to a
    /// process that died (kill -9, a lost node) and is failed and queued again, once, as a worker does.
    public var heartbeatInterval: Duration = .seconds(10)
    public var staleTrialTimeout: Double = 60

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
        try await profileBaseModel(study)
        let plan = try await self.plan(study)
        try await search(study, estimator: plan.estimator)
        // A trial a dead worker left is queued again and run here, even past the budget.
        while try await waitForOtherWorkers(study), try await search(study, estimator: plan.estimator) > 0 {}
        try await retrainCandidates(study, estimatorIsFull: plan.estimator.isFullFidelity, selection: plan.selection)
        let record = try await storage.study(named: config.name)
        let trials = try await storage.trials(studyID: record.id, states: nil)
        let output = URL(fileURLWithPath: config.output)
        let report = try StudyReport(studies: [StudySnapshot(record: record, trials: trials)]).write(to: output)
        let front = try await study.bestTrials().map(\.number).sorted()
        log("report: \(report.path)")
        return PipelineResult(studyName: config.name, reportDirectory: output, reportPage: report,
                              completeTrials: trials.filter { $0.state == .complete }.count, frontTrialNumbers: front)
    }

    /// `edgenas worker --config`: works for the study `edgenas search` plans, in this process:
    /// the selection's reference trainings while the plan waits for them, search trials until
    /// the study's budget is met, then the retraining of the front's candidates once the search
    /// queues it. Any number of workers, on any machine that sees the storage and the data. The
    /// profile, the plan, the selection's ranking and the report stay with `search`.
    /// Returns the study's complete trials.
    public func runWorker(pollInterval: Duration = .seconds(2), planTimeout: Duration = .seconds(86_400)) async throws -> Int {
        let study = try await openStudy()
        var waited = false
        let deadline = ContinuousClock.now + planTimeout
        while try await storage.study(named: config.name).attributes[PipelineAttribute.estimator] == nil {
            if let references = try await openQueue(Self.referencesQueue),
               try await references.work(referenceJob(try referenceArchitectures())) > 0 { continue }
            guard ContinuousClock.now < deadline else { throw PipelineError.noPlan(study: config.name) }
            if !waited { log("worker: waiting for the study's plan ('edgenas search --config' profiles, plans and selects)") }
            waited = true
            try await Task.sleep(for: pollInterval)
        }
        let plan = try await self.plan(study)
        try await search(study, estimator: plan.estimator)
        let complete = try await study.trials(states: [.complete]).count
        log("worker: the study's budget is met (\(complete) complete trials); waiting for the retraining to be queued")
        while true {
            if let retraining = try await openQueue(Self.retrainingQueue) {
                try await retraining.work(retrainJob(study, selection: plan.selection))
                return complete
            }
            guard ContinuousClock.now < deadline else { throw PipelineError.noPlan(study: config.name) }
            try await Task.sleep(for: pollInterval)
        }
    }

    /// Before the front is retrained, the trials other workers still run finish (or their
    /// workers die and the trials go stale and are queued again), so the front is the whole
    /// search's. Returns whether queued trials are left to run.
    private func waitForOtherWorkers(_ study: Study) async throws -> Bool {
        var logged = false
        while true {
            for dead in try await storage.failStaleTrials(studyID: study.studyID, timeout: staleTrialTimeout, maxRetries: 1) {
                log("search: trial id \(dead) stopped beating (its process died); failed and queued again")
            }
            let running = try await study.trials(states: [.running]).count
            if running == 0 { return try await !study.trials(states: [.waiting]).isEmpty }
            if !logged { log("search: waiting for \(running) trial(s) other workers are running") }
            logged = true
            try await Task.sleep(for: .seconds(1))
        }
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
        // Two processes started together may both find no study; only its creator sets it up.
        if study.wasCreated {
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
            log("study '\(config.name)' created in \(redactingPassword(in: config.storage)); baseline \(config.baseModel) enqueued as trial \(baseline.number)")
        } else {
            let complete = try await study.trials(states: [.complete]).count
            log("study '\(config.name)' resumed from \(redactingPassword(in: config.storage)): \(complete) complete trials")
        }
        return study
    }

    // MARK: profile

    /// Profiles the base model layer by layer on the latency backend's runtime (once per study),
    /// so the report shows where its latency goes.
    func profileBaseModel(_ study: Study) async throws {
        let record = try await storage.study(named: config.name)
        guard record.attributes[PipelineAttribute.layerProfile] == nil else { return }
        log("profile: \(config.baseModel) layer by layer (\(components.latency.name))")
        let profile = try components.profile(config.baseModel)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.layerProfile, value: try jsonText(profile))
        let total = profile.layers.reduce(0) { $0 + $1.milliseconds }
        let blocks = Dictionary(grouping: profile.layers, by: \.block).mapValues { $0.reduce(0) { $0 + $1.milliseconds } }
            .sorted { $0.value > $1.value }.prefix(3).map { String(format: "%@ %.0f %%", $0.key, 100 * $0.value / max(total, 1e-12)) }
        log(String(format: "profile: layers add up to %.2f ms; most of it in %@", total, blocks.joined(separator: ", ")))
    }

    // MARK: plan

    /// The search's estimator, and the selection it was chosen by (or learns from), if any.
    struct Plan {
        var estimator: any PerformanceEstimator
        var selection: EstimatorSelectionSummary?
    }

    /// Chooses the estimator (once per study; a resumed study keeps its choice) and says why.
    func plan(_ study: Study) async throws -> Plan {
        let record = try await storage.study(named: config.name)
        if let chosen = record.attributes[PipelineAttribute.estimator] {
            log("plan: estimator '\(chosen)' (chosen when the study started: \(record.attributes[PipelineAttribute.estimatorReason] ?? "-"))")
            let selection = try storedSelection(record)
            return Plan(estimator: try components.estimator(chosen, selection), selection: selection)
        }
        let (name, reason, selection) = try await chooseEstimator(study)
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
        if config.pruner.kind != .none {
            log("plan: pruner \(config.pruner.description), judging each trial's AP@0.5 after every training epoch against the trials "
                + "at least as fast (estimators that do not train are never pruned)")
        }
        return Plan(estimator: try components.estimator(name, selection), selection: selection)
    }

    private var budgetText: String {
        [config.budget.trials.map { "\($0) trials" }, config.budget.hours.map { String(format: "%g h", $0) }]
            .compactMap { $0 }.joined(separator: " and ")
    }

    /// `auto`: full training when the budget affords it for every trial; otherwise the
    /// two-stage selection's best strategy that fits the budget (or short training when the
    /// selection is off or would cost more than the trials it speeds up). `select`: the
    /// selection's choice whatever the budget.
    private func chooseEstimator(_ study: Study) async throws -> (String, String, EstimatorSelectionSummary?) {
        if config.estimator == ProjectConfig.selectedEstimator {
            let selection = try await selectionStage(study, fullTrainingSeconds: nil)
            return try selected(selection, because: "the config asks for the selection's choice (estimator: select)")
        }
        guard config.estimator == "auto" else {
            let selection = EstimatorCatalog.needsReferences(config.estimator) ? try await selectionStage(study, fullTrainingSeconds: nil) : nil
            return (config.estimator, "the config names it (\(EstimatorCatalog.summary(config.estimator, training: config.training)))", selection)
        }
        guard let hours = config.budget.hours else {
            return ("full", "the budget sets no time limit, so every trial can afford full training (\(config.training.epochs) epochs)", nil)
        }
        log("plan: timing the base model's training to see what the budget affords")
        let fullSeconds = try components.fullTrainingSeconds(config.baseModel)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.fullTrainingSeconds, value: String(fullSeconds))
        let affordable = hours * 3600 / fullSeconds
        if let trials = config.budget.trials, affordable >= Double(trials) {
            return ("full", String(format: "%d full trainings of about %.0f s fit in %g h", trials, fullSeconds, hours), nil)
        }
        let trialsText = config.budget.trials.map { "\($0) trials" } ?? "the trials a search needs"
        let notAffordable = String(format: "%@ of full training (about %.0f s each) do not fit in %g h (%.1f would)",
                                   trialsText, fullSeconds, hours, affordable)
        let shortSeconds = fullSeconds * Double(config.training.shortEpochs) / Double(config.training.epochs)
        let shortReason = String(format: "%d-epoch short training (about %.0f s each) does", config.training.shortEpochs, shortSeconds)
        let references = config.selection.references
        let expectedTrials = config.budget.trials ?? Int(hours * 3600 / shortSeconds)
        if references == 0 {
            return ("short", "\(notAffordable); the selection is off (selection.references: 0), and \(shortReason)", nil)
        }
        if references >= expectedTrials {
            return ("short", "\(notAffordable); training \(references) references for the selection would cost more than the "
                    + "\(expectedTrials) trials it speeds up, and \(shortReason)", nil)
        }
        let selection = try await selectionStage(study, fullTrainingSeconds: fullSeconds)
        return try selected(selection, because: notAffordable + String(format: " (%.0f s per trial)", hours * 3600 / Double(expectedTrials)))
    }

    /// The search estimator of the selection's choice, and why.
    private func selected(_ selection: EstimatorSelectionSummary, because reason: String) throws
        -> (String, String, EstimatorSelectionSummary?)
    {
        let row = selection.rows.first { $0.name == selection.chosen }
        // Every rank-table name maps to a search estimator (the selection only ranks those).
        return (EstimatorCatalog.name(ofStrategy: selection.chosen, fullEpochs: config.training.epochs) ?? "short",
                String(format: "%@; of the %d strategies ranked on %d fully trained references, %@ has the best Kendall tau "
                       + "(%.3f) among those that cost at most %.0f %% of a full training",
                       reason, selection.rows.count, selection.references.count, selection.chosen, row?.kendallTau ?? .nan,
                       100 * config.selection.maxCostFraction), selection)
    }

    // MARK: selection

    /// The selection a study stored, if any.
    private func storedSelection(_ record: StudyRecord) throws -> EstimatorSelectionSummary? {
        try record.attributes[PipelineAttribute.estimatorSelection].map {
            try decodeJSONText(EstimatorSelectionSummary.self, $0)
        }
    }

    /// Stage one of the two-stage procedure: trains `selection.references` architectures of the
    /// search space fully (the baseline first), ranks every estimation strategy by Kendall tau
    /// against their AP@0.5 and chooses the best one that is affordable: at most
    /// `selection.max_cost_fraction` of a full training, and within the budget per trial. The rank
    /// table goes to `<output>/selection/`, the summary and its cost into the study.
    func selectionStage(_ study: Study, fullTrainingSeconds: Double?) async throws -> EstimatorSelectionSummary {
        let record = try await storage.study(named: config.name)
        if let stored = try storedSelection(record) { return stored }
        let references = try referenceArchitectures()
        let epochs = config.training.epochs
        let settings = selectionSettings
        let directory = selectionDirectory
        log("select: training \(references.count) reference architectures fully (\(epochs) epochs each) to rank the estimators; "
            + "workers ('edgenas worker --config') train references too")
        let started = Date()
        let queue = try await createQueue(Self.referencesQueue, jobs: references.map(\.description))
        let trained = try await queue.finish(referenceJob(references))
        let runs = try references.map { architecture in
            guard let text = trained[architecture.description] else {
                throw WorkQueueError.jobFailed(queue: queue.name, job: architecture.description, error: "no result stored")
            }
            return try decodeJSONText(ReferenceRun.self, text)
        }
        let result = try components.selection(SelectionRequest(
            references: references, runs: runs, settings: settings, cacheDirectory: selectionCacheDirectory, log: { log("select: " + $0) }))
        try result.write(to: directory)
        let fullSeconds = fullTrainingSeconds ?? result.meanFullTrainingSeconds
        var perTrialBudget = config.selection.maxCostFraction * fullSeconds
        if let hours = config.budget.hours, let trials = config.budget.trials { perTrialBudget = min(perTrialBudget, hours * 3600 / Double(trials)) }
        let costs = Dictionary(result.strategyCosts(fullTrainingSeconds: fullSeconds).map { ($0.name, $0.secondsPerTrial) }) { a, _ in a }
        let chosen = result.table.rows.first { row in
            !row.kendallTau.isNaN && (costs[row.name] ?? .infinity) <= perTrialBudget
                && EstimatorCatalog.name(ofStrategy: row.name, fullEpochs: epochs) != nil
        }?.name ?? result.chosen ?? "val_ap@1ep"
        let summary = EstimatorSelectionSummary(
            rows: result.table.rows.map {
                .init(name: $0.name, kendallTau: $0.kendallTau, spearmanRho: $0.spearmanRho, secondsPerArchitecture: $0.secondsPerArchitecture)
            },
            chosen: chosen, references: zip(result.architectures, result.trueAP).map { .init(architecture: $0, ap50: $1) },
            meanFullTrainingSeconds: result.meanFullTrainingSeconds)
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.estimatorSelection, value: try jsonText(summary))
        try await storage.setStudyAttribute(studyID: study.studyID, key: PipelineAttribute.selectionSeconds, value: String(result.selectionSeconds))
        log("select: done in \(formatSeconds(Date().timeIntervalSince(started))); chosen \(chosen); rank table in \(directory.path)/rank_table.txt")
        return summary
    }

    /// The selection's settings: learning-curve budgets up to the affordable share of a full training.
    var selectionSettings: SelectionSettings {
        let epochs = config.training.epochs
        let affordableEpochs = max(1, min(epochs - 1, Int(config.selection.maxCostFraction * Double(epochs))))
        return SelectionSettings(
            epochs: epochs, epochBudgets: Array(1...affordableEpochs), folds: min(config.selection.folds, config.selection.references),
            bootstrapResamples: config.selection.resamples, maxCostFraction: config.selection.maxCostFraction, seed: config.seed,
            trainingKey: "\(config.dataset.format.rawValue):\(config.dataset.path) batch=\(config.training.batchSize) "
                + "lr=\(config.training.learningRate) optimizer=\(config.training.optimizer.rawValue) seed=\(config.seed)")
    }

    /// The baseline and `selection.references - 1` other distinct members of the search space,
    /// drawn uniformly with the config's seed.
    func referenceArchitectures() throws -> [DetectorArchitecture] {
        var result = [config.baseModel]
        var seen: Set<String> = [config.baseModel.description]
        var generator = SplitMix64(seed: config.seed &+ 0x5E1EC7)
        var attempts = 0
        while result.count < config.selection.references, attempts < 100 * config.selection.references {
            attempts += 1
            let candidate = try ArchitectureSpace.architecture(config.searchSpace.sampleUniform(using: &generator), base: config.baseModel)
            if seen.insert(candidate.description).inserted { result.append(candidate) }
        }
        return result
    }

    // MARK: search

    /// Runs trials until the budget is met; returns how many this call ran.
    @discardableResult
    private func search(_ study: Study, estimator: any PerformanceEstimator) async throws -> Int {
        let record = try await storage.study(named: config.name)
        // Search time of earlier runs; this run's is the time since `started`.
        let earlierSeconds = Double(record.attributes[PipelineAttribute.searchSeconds] ?? "") ?? 0
        var usedSeconds = earlierSeconds
        let clock = components.clock
        let started = clock()
        let baseModel = config.baseModel, objectives = config.objectives, constraints = config.constraints
        let latency = components.latency
        let pruner = config.pruner.pruner
        var failuresInARow = 0
        var trialSeconds: [Double] = []
        while true {
            for dead in try await storage.failStaleTrials(studyID: study.studyID, timeout: staleTrialTimeout, maxRetries: 1) {
                log("search: trial id \(dead) stopped beating (its process died); failed and queued again")
            }
            let trials = try await study.trials()
            let finished = Self.finishedTrials(trials)
            let elapsed = earlierSeconds + clock().timeIntervalSince(started)
            // Queued trials (the baseline, a dead worker's trial) run even when the budget is met.
            let queued = trials.contains { $0.state == .waiting }
            if let budget = config.budget.trials, finished >= budget, !queued { break }
            if let hours = config.budget.hours, elapsed >= hours * 3600 {
                log(String(format: "search: the %g h budget is spent after %d finished trials", hours, finished))
                break
            }
            let trialStart = clock()
            let failure = FailureNote()
            let evaluated = Dictionary(trials.filter { $0.state == .complete }.compactMap { trial in
                TrialRecord(trial).map { ($0.architecture, trial) }
            }) { first, _ in first }
            let pruning = pruner.map { EpochPruning(pruner: $0, objectives: objectives, trials: trials) }
            try await study.optimize(nTrials: 1, catchErrors: true, heartbeatInterval: heartbeatInterval) { trial in
                do {
                    return try await Self.evaluate(trial, base: baseModel, objectives: objectives, constraints: constraints,
                                             latency: latency, estimator: estimator, evaluated: evaluated, pruning: pruning)
                } catch let pruned as TrialPruned {
                    throw pruned
                } catch {
                    failure.error = "\(error)"
                    throw error
                }
            }
            let seconds = clock().timeIntervalSince(trialStart)
            trialSeconds.append(seconds)
            usedSeconds = earlierSeconds + clock().timeIntervalSince(started)
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
        return trialSeconds.count
    }

    /// Complete and pruned trials: what the trial budget counts (a pruned trial spent its share).
    static func finishedTrials(_ trials: [FrozenTrial]) -> Int {
        trials.filter { $0.state == .complete || $0.state == .pruned }.count
    }

    /// A trial's latency. On a backend that runs in this process, once the base model's trial
    /// is done, the network is timed in alternating runs with the base model and its latency is
    /// the ratio of the two times the base trial's milliseconds: a shared machine's speed
    /// changes for seconds at a time (1.6x on this project's VM), and a median taken alone
    /// carries that state into the front, while the ratio of runs a few milliseconds apart
    /// does not (docs/benchmarks.md, "Paired latency"). Every trial is then in the base
    /// trial's units, on one machine or on many alike.
    static func measureLatency(
        _ architecture: DetectorArchitecture, base: DetectorArchitecture, latency: any LatencyBackend, baseTrial: FrozenTrial?
    ) throws -> (LatencyMeasurement, reference: String?) {
        guard let inProcess = latency as? any InProcessLatencyBackend, architecture.description != base.description,
              let baseMilliseconds = baseTrial.flatMap(TrialRecord.init)?.latencyMilliseconds else {
            return (try latency.measure(architecture: architecture), nil)
        }
        let paired = try inProcess.measure(architecture, against: base)
        return (try paired.candidate(atReferenceMilliseconds: baseMilliseconds), base.description)
    }

    /// One trial: the architecture, its latency on the backend, the estimator's score, and the
    /// objective values and constraints in the config's order. An architecture a complete trial
    /// already evaluated (a sampler may propose a point twice) takes that trial's results, so
    /// one network never shows two latencies or scores in the front and the report.
    /// With `pruning`, the estimator reports AP@0.5 after each training epoch (stored as the
    /// trial's intermediate values) and a stop ends the trial as pruned, its record kept.
    static func evaluate(
        _ trial: TrialHandle, base: DetectorArchitecture, objectives: [SearchObjective], constraints: [SearchConstraint],
        latency: any LatencyBackend, estimator: any PerformanceEstimator, evaluated: [String: FrozenTrial] = [:],
        pruning: EpochPruning? = nil
    ) async throws -> Evaluation {
        try await trial.setUserAttribute(TrialRecord.workerAttribute, TrialRecord.thisWorker)
        CrashDrill.trialStarted()
        let architecture = try ArchitectureSpace.architecture(trial.parameters, base: base)
        if let earlier = evaluated[architecture.description], let values = earlier.values, var record = TrialRecord(earlier) {
            record.duplicateOf = earlier.number
            try await trial.setUserAttribute(TrialRecord.attribute, try jsonText(record))
            return Evaluation(values: values, constraints: earlier.constraints)
        }
        let graph = try DetectorGraph(architecture)
        let (measurement, latencyReference) = try measureLatency(architecture, base: base, latency: latency, baseTrial: evaluated[base.description])
        var metrics: [SearchObjective: Double] = [
            .latency: measurement.median, .params: Double(graph.parameterCount), .memory: Double(graph.peakActivationElements * 4) / 1e6,
        ]
        func record(score: Double, ap50: Double?, seconds: Double, epochs: Int, prunedAfterEpoch: Int? = nil) -> TrialRecord {
            var record = TrialRecord(
                architecture: architecture.description, latencyMilliseconds: measurement.median,
                latencyInterquartileRange: measurement.interquartileRange, latencyBackend: measurement.backend,
                parameters: graph.parameterCount, memoryMegabytes: metrics[.memory]!, multiplyAccumulates: graph.multiplyAccumulates,
                estimator: estimator.name, score: score, ap50: ap50, estimateSeconds: seconds, estimateEpochs: epochs)
            record.prunedAfterEpoch = prunedAfterEpoch
            record.npuFallbackOperators = measurement.npu?.fallbackOperators
            record.latencyReference = latencyReference
            return record
        }
        let estimateStarted = Date()
        var epochAP: [Int: Double] = [:]
        let estimate: PerformanceEstimate
        do {
            estimate = try estimator.estimate(architecture, trialNumber: trial.number, afterEpoch: pruning.map { pruning in
                { [metrics] epochs, ap in
                    epochAP[epochs] = ap
                    if pruning.shouldStop(trialID: trial.id, number: trial.number, intermediateValues: epochAP, metrics: metrics) {
                        throw TrialPruned()
                    }
                }
            })
        } catch let pruned as TrialPruned {
            for (epochs, ap) in epochAP.sorted(by: { $0.key < $1.key }) { try await trial.report(step: epochs, value: ap) }
            let (epochs, ap) = epochAP.max { $0.key < $1.key }!
            let stopped = record(score: ap, ap50: ap, seconds: Date().timeIntervalSince(estimateStarted), epochs: epochs, prunedAfterEpoch: epochs)
            try await trial.setUserAttribute(TrialRecord.attribute, try jsonText(stopped))
            throw pruned
        }
        for (epochs, ap) in epochAP.sorted(by: { $0.key < $1.key }) { try await trial.report(step: epochs, value: ap) }
        metrics[.ap50] = estimate.score
        // The record goes in before the values: a finished trial's attributes cannot change.
        try await trial.setUserAttribute(TrialRecord.attribute, try jsonText(record(
            score: estimate.score, ap50: estimate.ap50, seconds: estimate.seconds, epochs: estimate.epochs)))
        let values = objectives.map { metrics[$0]! }
        let constraintValues = try constraints.flatMap { constraint in
            if let objective = constraint.metric.objective { return constraint.values(for: metrics[objective]!) }
            guard let npu = measurement.npu else {
                throw PipelineError.unmeasuredConstraint(constraint.metric.rawValue, backend: measurement.backend)
            }
            return constraint.values(for: Double(npu.fallbackOperators))
        }
        return Evaluation(values: values, constraints: constraintValues.isEmpty ? nil : constraintValues)
    }

    private func logProgress(_ study: Study, trialSeconds: [Double], usedSeconds: Double) async throws {
        let trials = try await study.trials()
        let finished = Self.finishedTrials(trials)
        let failed = trials.filter { $0.state == .failed }.count
        let pruned = trials.filter { $0.state == .pruned }.count
        let front = try await study.bestTrials()
        let mean = trialSeconds.reduce(0, +) / Double(max(1, trialSeconds.count))
        var remaining: [Double] = []
        if let budget = config.budget.trials { remaining.append(Double(max(0, budget - finished)) * mean) }
        if let hours = config.budget.hours { remaining.append(max(0, hours * 3600 - usedSeconds)) }
        let total = config.budget.trials.map { "/\($0)" } ?? ""
        let last = trials.last { $0.state.isFinished }
        let lastText = last.map { trial -> String in
            let architecture = TrialRecord(trial)?.architecture ?? "?"
            if trial.state == .pruned, let record = TrialRecord(trial), let epochs = record.prunedAfterEpoch {
                return String(format: "trial %d %@: pruned after %d epoch(s) at AP@0.5 %.4f", trial.number, architecture, epochs, record.score)
            }
            guard trial.state == .complete, let values = trial.values else { return "trial \(trial.number) \(trial.state.rawValue)" }
            return String(format: "trial %d %@: score %.4f, %.2f ms", trial.number, architecture, values[0], values[1])
        } ?? ""
        let prunedText = config.pruner.kind == .none ? "" : " (\(pruned) pruned)"
        log(String(format: "search: %d%@ finished%@, %d failed, front %d  |  %@  |  ETA %@", finished, total, prunedText, failed,
                   front.count, lastText, remaining.min().map(formatSeconds) ?? "?"))
    }

    // MARK: retraining

    /// After a low-fidelity search, trains the front's candidates (at most
    /// `config.retrainCandidates`, spread along the front) and the baseline fully, as jobs of
    /// the retraining queue that workers take too. A candidate that is one of the selection's
    /// references keeps that full training. The queue is made (empty) after a full-fidelity
    /// search as well, so that workers know there is nothing left to do.
    private func retrainCandidates(_ study: Study, estimatorIsFull: Bool, selection: EstimatorSelectionSummary?) async throws {
        if estimatorIsFull {
            log("retrain: not needed, the search trained every trial fully")
            _ = try await createQueue(Self.retrainingQueue, jobs: [])
            return
        }
        let record = try await storage.study(named: config.name)
        // A repeated architecture is retrained once, as its first trial.
        let front = try await study.bestTrials().filter { TrialRecord($0)?.duplicateOf == nil }
            .sorted { ($0.values?[1] ?? 0) < ($1.values?[1] ?? 0) }
        var chosen = Self.spread(front, count: config.retrainCandidates)
        if let baselineNumber = record.attributes[PipelineAttribute.baselineTrial].flatMap(Int.init),
           !chosen.contains(where: { $0.number == baselineNumber }),
           let baseline = try await study.trials(states: [.complete]).first(where: { $0.number == baselineNumber }) {
            chosen.insert(baseline, at: 0)
        }
        let jobs = chosen.map { String($0.number) }.filter { record.attributes[RetrainedResult.attributePrefix + $0] == nil }
        log("retrain: \(chosen.count) candidates (\(jobs.count) not yet retrained), \(config.training.epochs) epochs each; "
            + "workers take candidates too")
        let queue = try await createQueue(Self.retrainingQueue, jobs: jobs)
        _ = try await queue.finish(retrainJob(study, selection: selection))
    }

    /// Retrains one candidate, named by its trial number (a job of the retraining queue), and
    /// stores its `RetrainedResult` as the study attribute `retrained.<trial>`.
    private func retrainJob(_ study: Study, selection: EstimatorSelectionSummary?) -> @Sendable (String) async throws -> String {
        { job in
            guard let number = Int(job), let trial = try await study.trials(states: [.complete]).first(where: { $0.number == number }) else {
                throw WorkQueueError.unknownJob(queue: config.name + Self.retrainingQueue, job: job)
            }
            let architecture = try ArchitectureSpace.architecture(trial.parameters, base: config.baseModel)
            let estimate: PerformanceEstimate
            let weights: URL
            if let reference = selection?.references.first(where: { $0.architecture == architecture.description }) {
                log("retrain: trial \(number) \(architecture) was trained fully as a selection reference")
                estimate = PerformanceEstimate(score: reference.ap50, ap50: reference.ap50, seconds: selection!.meanFullTrainingSeconds,
                                               epochs: config.training.epochs)
                weights = DetectorReferenceTrainer.weightsFile(architecture, in: referenceWeightsDirectory)
            } else {
                log("retrain: trial \(number) \(architecture), \(config.training.epochs) epochs")
                let checkpoint = URL(fileURLWithPath: config.output).appendingPathComponent("checkpoints/trial-\(number)")
                estimate = try components.retrain(architecture, checkpoint)
                weights = checkpoint.appendingPathComponent(try TrainingCheckpoint.load(from: checkpoint)?.deployedModelFile ?? TrainingCheckpoint.modelFile)
            }
            let int8 = try quantizedAP(architecture, weights: weights)
            let result = RetrainedResult(trialNumber: number, architecture: architecture.description,
                                         ap50: estimate.score, int8AP50: int8, seconds: estimate.seconds, epochs: estimate.epochs)
            let text = try jsonText(result)
            try await storage.setStudyAttribute(studyID: study.studyID, key: RetrainedResult.attributePrefix + job, value: text)
            log(String(format: "retrain: trial %d AP@0.5 %.4f, INT8 %@ (search score %.4f) in %@", number, estimate.score,
                       int8.map { String(format: "%.4f", $0) } ?? "not measured", trial.values?[0] ?? .nan, formatSeconds(estimate.seconds)))
            return text
        }
    }

    // MARK: queues

    /// The stages kept as work queues, named after the study: `<study>/references`, `<study>/retraining`.
    static let referencesQueue = "/references", retrainingQueue = "/retraining"

    /// The work queues a search keeps beside its study, which go when the study goes.
    public static func workQueueNames(study: String) -> [String] { [study + referencesQueue, study + retrainingQueue] }

    private func createQueue(_ stage: String, jobs: [String]) async throws -> WorkQueue {
        try await WorkQueue.create(named: config.name + stage, jobs: jobs, storage: storage, heartbeatInterval: heartbeatInterval,
                                   staleTimeout: staleTrialTimeout, log: log)
    }

    private func openQueue(_ stage: String) async throws -> WorkQueue? {
        try await WorkQueue.open(named: config.name + stage, storage: storage, heartbeatInterval: heartbeatInterval,
                                 staleTimeout: staleTrialTimeout, log: log)
    }

    /// Trains one reference of the selection, named by its architecture (a job of the
    /// references queue), validated where the selection's strategies read; the result is its
    /// `ReferenceRun` as JSON.
    private func referenceJob(_ references: [DetectorArchitecture]) -> @Sendable (String) async throws -> String {
        let validatedEpochs = selectionSettings.validatedEpochs
        return { job in
            guard let index = references.firstIndex(where: { $0.description == job }) else {
                throw WorkQueueError.unknownJob(queue: config.name + Self.referencesQueue, job: job)
            }
            log("select: [\(index + 1)/\(references.count)] \(job): training \(config.training.epochs) epochs")
            let run = try components.trainReference(references[index], validatedEpochs, referenceWeightsDirectory) { log("select: " + $0) }
            log(String(format: "select: [%d/%d] %@: AP@0.5 %.4f after %.0f s of training", index + 1, references.count, job,
                       run.finalAP, run.fullTrainingSeconds))
            return try jsonText(run)
        }
    }

    /// INT8 AP@0.5 of a candidate's trained weights; nil (logged) when they are missing (a
    /// reference trained before references kept weights) or cannot be quantized here.
    private func quantizedAP(_ architecture: DetectorArchitecture, weights: URL) throws -> Double? {
        guard FileManager.default.fileExists(atPath: weights.path) else {
            log("retrain: no weights at \(weights.path), so no INT8 AP@0.5 for \(architecture)")
            return nil
        }
        log("retrain: quantizing \(architecture) to INT8 (calibrated on training images) and evaluating it")
        return try components.quantizedAP(architecture, weights)
    }

    /// Where the selection stage writes its results, and keeps its proxy scores.
    private var selectionDirectory: URL { URL(fileURLWithPath: config.output).appendingPathComponent("selection") }
    private var selectionCacheDirectory: URL { selectionDirectory.appendingPathComponent("cache") }
    /// Where the references' final weights go, for the INT8 AP@0.5 of those on the front.
    private var referenceWeightsDirectory: URL { selectionCacheDirectory.appendingPathComponent("weights") }

    /// Up to `count` trials evenly spread over a front sorted by latency (both ends kept).
    static func spread(_ front: [FrozenTrial], count: Int) -> [FrozenTrial] {
        guard front.count > count else { return front }
        guard count > 1 else { return count == 1 ? [front[0]] : [] }
        let indices = (0..<count).map { Int((Double($0) * Double(front.count - 1) / Double(count - 1)).rounded()) }
        return Array(Set(indices)).sorted().map { front[$0] }
    }
}

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

/// The crash-safety drill: a process started with `EDGENAS_CRASH_DRILL_TRIAL=K` kills itself
/// with SIGKILL in its K-th trial, after the trial is running and named after it, as a worker
/// dies when its node is lost. The distributed tests use it to kill a worker mid-trial exactly,
/// where killing it from outside at the right moment depends on timing.
enum CrashDrill {
    static let variable = "EDGENAS_CRASH_DRILL_TRIAL"
    private static let target = ProcessInfo.processInfo.environment[variable].flatMap(Int.init)
    private static let started = Mutex(0)

    static func trialStarted() {
        guard let target else { return }
        let count = started.withLock { value -> Int in
            value += 1
            return value
        }
        if count == target { kill(getpid(), SIGKILL) }
    }
}

