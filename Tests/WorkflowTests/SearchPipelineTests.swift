import DetectionData
import Estimation
import Estimators
import Foundation
@testable import Hardware
import Search
import Storage
import Testing
import Vision
@testable import Workflow
import ZeroCostProxies

/// Latency from the architecture's multiply-accumulates (1 ms per 10 M), so the test knows
/// every trial's latency without timing anything.
struct FakeLatency: LatencyBackend {
    var name: String { "fake-macs" }

    static func milliseconds(_ architecture: DetectorArchitecture) throws -> Double {
        Double(try DetectorGraph(architecture).multiplyAccumulates) / 1e7
    }

    func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        try LatencyMeasurement(backend: name, architecture: architecture.description, threads: 1, warmupRuns: 0,
                               samples: TimedSamples(milliseconds: [Self.milliseconds(architecture)], stopReason: .stable))
    }
}

/// The fake latency as an NPU compiler reports it: grouped heads leave one more operator to the CPU.
struct FakeNPULatency: LatencyBackend {
    var name: String { "fake-npu" }
    func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        var measurement = try FakeLatency().measure(architecture: architecture)
        // Pretend grouped heads have one operator the NPU lacks.
        measurement.npu = NPUMapping(npuOperators: 100, cpuOperators: architecture.headGroups > 1 ? 8 : 7, floatOperators: 7, sramKiB: 300)
        return measurement
    }
}

/// A backend that must not be asked.
struct FailingLatency: LatencyBackend {
    var name: String { "failing" }
    func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        throw HardwareError.invalidSetting("latency", value: architecture.description, expected: "no measurement in this test")
    }
}

/// A low-fidelity "short" estimator whose AP is a fixed function of the architecture: wider
/// heads, kernel 5, fewer groups and larger inputs score higher, as they tend to.
struct FakeEstimator: PerformanceEstimator {
    var name: String { "short" }
    var isFullFidelity: Bool { false }

    static func ap(_ a: DetectorArchitecture) -> Double {
        0.3 + 0.25 * Double(a.headChannels) / 96 + (a.headKernelSize == 5 ? 0.05 : 0) - 0.02 * log2(Double(a.headGroups))
            + 0.1 * Double(a.inputWidth - 224) / 96
    }

    /// Epochs a watched estimate reports, AP@0.5 climbing linearly to the final value.
    static let watchedEpochs = 4

    func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        let ap = Self.ap(architecture)
        for epoch in 1...Self.watchedEpochs { try afterEpoch?(epoch, ap * Double(epoch) / Double(Self.watchedEpochs)) }
        return PerformanceEstimate(score: ap, ap50: ap, seconds: 0.01, epochs: 1)
    }
}

/// A reference training in the fake world: 10 epochs of 10 s, ending 0.1 above the short
/// estimate (as the fake full training does). The training loss falls in the order of the true
/// AP, so SoTL ranks perfectly; the validation AP of early epochs is scrambled.
struct FakeReferenceTrainer: ReferenceTrainer {
    func train(_ architecture: DetectorArchitecture, epochs: Int, validatingAfter validatedEpochs: Set<Int>) throws -> ReferenceRun {
        let truth = FakeEstimator.ap(architecture) + 0.1
        let scramble = Double(architecture.description.unicodeScalars.reduce(0) { ($0 * 31 + Int($1.value)) % 97 }) / 97
        let ap = (1...epochs).map { e in e == epochs ? truth : scramble * Double(e) / Double(epochs) }
        return ReferenceRun(architecture: architecture.description, trainingLosses: (1...epochs).map { 2 - truth * Double($0) / Double(epochs) },
                            validationAP: ap, validationLosses: ap.map { 1 - $0 }, epochSeconds: Array(repeating: 10, count: epochs),
                            evaluationSeconds: Array(repeating: 1, count: epochs),
                            parameterCount: try DetectorGraph(architecture).parameterCount,
                            multiplyAccumulates: try DetectorGraph(architecture).multiplyAccumulates)
    }
}

/// Proxies that know nothing (scores from the name), at 0.2 s each.
struct FakeProxyScorer: ProxyScorer {
    func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
        ZeroCostProxy.allCases.map { proxy in
            ZeroCostProxyScore(proxy: proxy, score: Double((architecture.description + proxy.rawValue).utf8.reduce(0) { ($0 * 7 + Int($1)) % 13 }),
                               seconds: 0.2)
        }
    }
}

/// The profile the fake world's base model has.
let fakeProfile = LayerProfileSummary(backend: "fake-macs", architecture: "k5-g1-c96-w320", layers: [
    .init(name: "stage3.0.branch2", block: "stage3", milliseconds: 2), .init(name: "head.dw", block: "head", milliseconds: 1),
    .init(name: "stem.conv", block: "stem", milliseconds: 0.5),
])

/// Time in the fake world: it passes only when a fake component says its work took some, so
/// the hours budget is spent on the test's schedule, not on how busy the machine is.
final class FakeTime: @unchecked Sendable {
    private let lock = NSLock()
    private var now = Date(timeIntervalSince1970: 1_800_000_000)
    func read() -> Date { lock.withLock { now } }
    func advance(by seconds: Double) { lock.withLock { now += seconds } }
}

/// The fake estimator, taking `seconds` of fake time per estimate.
struct TimedFakeEstimator: PerformanceEstimator {
    var time: FakeTime
    var seconds: Double
    var name: String { "short" }
    var isFullFidelity: Bool { false }
    func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        time.advance(by: seconds)
        return try FakeEstimator().estimate(architecture, trialNumber: trialNumber, afterEpoch: afterEpoch)
    }
}

/// Full training in the fake world: 0.1 above the short estimate. The selection runs the real
/// ranking on fake trainings and proxies. Its clock stands still: the hours budget is never spent.
let fakeComponents = PipelineComponents(
    latency: FakeLatency(), profile: { _ in fakeProfile }, estimator: { _, _ in FakeEstimator() }, fullTrainingSeconds: { _ in 100 },
    trainReference: { architecture, validatedEpochs, _, _ in
        try FakeReferenceTrainer().train(architecture, epochs: 10, validatingAfter: validatedEpochs)
    },
    selection: { request in
        try EstimatorSelection(settings: request.settings).run(architectures: request.references, trainer: TrainedReferenceRuns(request.runs),
                                                                proxies: FakeProxyScorer(), log: request.log)
    },
    retrain: { architecture, checkpoint in
        // The weights file a real training leaves, for the INT8 stage to find.
        if let checkpoint {
            try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
            try Data().write(to: checkpoint.appendingPathComponent(TrainingCheckpoint.modelFile))
        }
        return PerformanceEstimate(score: FakeEstimator.ap(architecture) + 0.1, ap50: FakeEstimator.ap(architecture) + 0.1, seconds: 2, epochs: 10)
    },
    quantizedAP: { architecture, weights in
        // INT8 loses 0.02 in the fake world, and only weights a training left can be quantized.
        FileManager.default.fileExists(atPath: weights.path) ? FakeEstimator.ap(architecture) + 0.08 : nil
    }, clock: FakeTime().read)

func temporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func pipelineConfig(directory: URL, trials: Int, estimator: String = "auto", hours: String = "0.01",
                    references: Int = 40) throws -> ProjectConfig {
    try ProjectConfig.parse(yaml: """
        name: tiny
        dataset: {path: data}
        budget: {trials: \(trials), hours: \(hours)}
        estimator: \(estimator)
        selection: {references: \(references), resamples: 100}
        storage: sqlite://study.db
        seed: 3
        training: {epochs: 10, short_epochs: 1}
        retrain: {candidates: 3}
        output: report
        """, baseDirectory: directory)
}

/// Collects the pipeline's progress lines.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

@Suite struct SearchPipelineTests {
    /// A search killed mid-trial (kill -9) leaves that trial running with no heartbeat; the rerun
    /// fails it, queues its architecture again and completes the budget.
    @Test func aRerunAfterAKilledSearchRequeuesItsDeadTrial() async throws {
        let directory = try temporaryDirectory("pipeline-killed")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        _ = try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 2, estimator: "short"), storage: storage,
                                     components: fakeComponents, log: { _ in }).run()
        // What the killed process left: a started trial with parameters and no result.
        let record = try await storage.study(named: "tiny")
        let dead = try await storage.startTrial(studyID: record.id)
        let parameters: [String: ParameterValue] = ["kernel": .int(3), "groups": .int(2), "channels": .int(48), "width": .int(256)]
        try await storage.setParameters(trialID: dead.id, parameters)

        var rerun = SearchPipeline(config: try pipelineConfig(directory: directory, trials: 4, estimator: "short"), storage: storage,
                                   components: fakeComponents)
        rerun.staleTrialTimeout = 0
        let log = LogLines()
        rerun.log = log.append
        try await rerun.run()
        let trials = try await storage.trials(studyID: record.id, states: nil)
        #expect(trials.first { $0.id == dead.id }?.state == .failed)
        #expect(trials.filter { $0.state == .complete }.count == 4)
        #expect(trials.contains { $0.state == .complete && $0.parameters == parameters && $0.id != dead.id })
        #expect(!trials.contains { $0.state == .running })
        #expect(log.lines.contains { $0.contains("trial id \(dead.id) stopped beating") })
    }

    @Test func theHoursBudgetStopsTheSearchWhenItsClockSaysSo() async throws {
        let directory = try temporaryDirectory("pipeline-hours")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        // 0.01 h is 36 s and a trial's estimate takes 10 s (a repeated architecture takes none):
        // the search stops at its first look at the clock past 36 s, well before 8 trials.
        let time = FakeTime()
        var components = fakeComponents
        components.clock = time.read
        components.estimator = { _, _ in TimedFakeEstimator(time: time, seconds: 10) }
        let log = LogLines()
        let result = try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 8, estimator: "short"),
                                              storage: storage, components: components, log: log.append).run()
        #expect((4...7).contains(result.completeTrials))
        #expect(log.lines.contains("search: the 0.01 h budget is spent after \(result.completeTrials) finished trials"))
        let record = try await storage.study(named: "tiny")
        let searchSeconds = try #require(record.attributes[PipelineAttribute.searchSeconds].flatMap(Double.init))
        #expect(searchSeconds >= 36 && searchSeconds < 46)
    }

    @Test func aTinySearchProducesAFrontRetrainedCandidatesAndAReport() async throws {
        let directory = try temporaryDirectory("pipeline")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try pipelineConfig(directory: directory, trials: 8)
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let log = LogLines()
        let result = try await SearchPipeline(config: config, storage: storage, components: fakeComponents, log: log.append).run()

        let record = try await storage.study(named: "tiny")
        let trials = try await storage.trials(studyID: record.id, states: nil)
        let complete = trials.filter { $0.state == .complete }
        #expect(complete.count == 8 && result.completeTrials == 8)
        // The baseline ran first, with the base model's parameters and its own numbers.
        let baseline = try #require(trials.first)
        #expect(record.attributes[PipelineAttribute.baselineTrial] == "0")
        #expect(baseline.parameters == ["kernel": .int(5), "groups": .int(1), "channels": .int(96), "width": .int(320)])
        #expect(baseline.values == [FakeEstimator.ap(.baseline), try FakeLatency.milliseconds(.baseline)])
        let baselineRecord = try #require(TrialRecord(baseline))
        #expect(baselineRecord.architecture == "k5-g1-c96-w320" && baselineRecord.duplicateOf == nil)
        #expect(baselineRecord.score == baseline.values![0] && baselineRecord.latencyMilliseconds == baseline.values![1])
        #expect(baselineRecord.parameters == (try DetectorGraph(.baseline)).parameterCount && baselineRecord.estimator == "short")

        // The auto plan: 8 full trainings of 100 s do not fit in 0.01 h, and 40 references would
        // cost more than the 8 trials, so short training.
        #expect(record.attributes[PipelineAttribute.estimator] == "short")
        #expect(record.attributes[PipelineAttribute.estimatorReason]?.contains("do not fit in 0.01 h") == true)
        #expect(record.attributes[PipelineAttribute.estimatorReason]?.contains("would cost more than the 8 trials") == true)
        #expect(record.attributes[PipelineAttribute.estimatorSelection] == nil)
        // The profile stage ran first and its layers reached the study.
        let profile = try decodeJSONText(LayerProfileSummary.self, try #require(record.attributes[PipelineAttribute.layerProfile]))
        #expect(profile == fakeProfile)
        #expect(log.lines.contains { $0.hasPrefix("search: 8/8 finished") && $0.contains("front") && $0.contains("ETA") })

        // The front is the brute-force set of non-dominated trials.
        let expectedFront = complete.filter { trial in
            !complete.contains { other in
                other.values![0] >= trial.values![0] && other.values![1] <= trial.values![1] && other.values! != trial.values!
            }
        }.map(\.number).sorted()
        #expect(result.frontTrialNumbers == expectedFront)

        // At most 3 front candidates plus the baseline were retrained, each 0.1 above its estimate.
        let snapshot = StudySnapshot(record: record, trials: trials)
        let retrained = snapshot.retrained
        #expect(retrained[0] != nil)
        #expect(retrained.count <= 4 && retrained.count >= 2)
        for (number, value) in retrained {
            let trial = try #require(trials.first { $0.number == number })
            #expect(abs(value.ap50 - (trial.values![0] + 0.1)) < 1e-12)
            #expect(abs(try #require(value.int8AP50) - (value.ap50 - 0.02)) < 1e-12)
        }

        // The report: page, plot, tables and data files, with the chosen table against the baseline.
        let reportDirectory = directory.appendingPathComponent("report")
        for file in ["index.html", "pareto.svg", "trials.csv", "trials.json", "chosen.csv", "speedup.csv"] {
            #expect(FileManager.default.fileExists(atPath: reportDirectory.appendingPathComponent(file).path), "\(file) missing")
        }
        let csv = try String(contentsOf: reportDirectory.appendingPathComponent("trials.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 1 + trials.count)
        let chosen = StudyReport(studies: [snapshot]).chosenTable
        let baselineRow = try #require(chosen.rows.first { $0[1] == "0 (baseline)" })
        #expect(baselineRow[4] == "+0.0" && baselineRow[6] == "+0.0000")
        for row in chosen.rows {
            let trial = try #require(trials.first { $0.number == Int(row[1].split(separator: " ")[0])! })
            let latencyChange = 100 * (trial.values![1] - baseline.values![1]) / baseline.values![1]
            #expect(row[4] == String(format: "%+.1f", latencyChange))
            #expect(row[6] == String(format: "%+.4f", trial.values![0] - baseline.values![0]))
            #expect(row[7] == String(format: "%.4f", try #require(retrained[trial.number]?.int8AP50)))
        }
        let svg = try String(contentsOf: reportDirectory.appendingPathComponent("pareto.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "<circle class=\"trial\"").count - 1 == complete.count + retrained.count)
        #expect(svg.contains("class=\"baseline\""))
        await storage.close()
    }

    @Test func theAutoPlanRunsTheSelectionAndSearchesWithItsBestAffordableStrategy() async throws {
        let directory = try temporaryDirectory("pipeline-selection")
        defer { try? FileManager.default.removeItem(at: directory) }
        // 30 trials of full training (100 s each) do not fit in 0.05 h; 6 references cost less than 30 trials.
        let config = try pipelineConfig(directory: directory, trials: 30, hours: "0.05", references: 6)
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let log = LogLines()
        _ = try await SearchPipeline(config: config, storage: storage, components: fakeComponents, log: log.append).run()
        let record = try await storage.study(named: "tiny")
        let summary = try decodeJSONText(EstimatorSelectionSummary.self, try #require(record.attributes[PipelineAttribute.estimatorSelection]))

        // The references: the baseline first, then 5 other distinct members of the space, with their full AP.
        #expect(summary.references.count == 6 && Set(summary.references.map(\.architecture)).count == 6)
        #expect(summary.references[0] == .init(architecture: "k5-g1-c96-w320", ap50: FakeEstimator.ap(.baseline) + 0.1))
        #expect(summary.rows.count >= 24)
        // Affordable: at most 25 % of a full training and 0.05 h / 30 trials = 6 s per trial, so
        // no learning-curve strategy (10 s an epoch); the best tau among the rest is chosen.
        let affordable = summary.rows.filter { !$0.kendallTau.isNaN && $0.secondsPerArchitecture <= 6 && !$0.name.contains("@") }
        let chosen = try #require(summary.rows.first { $0.name == summary.chosen })
        #expect(chosen.kendallTau == affordable.map(\.kendallTau).max())
        #expect(!summary.chosen.contains("@"))
        let estimator = try #require(EstimatorCatalog.name(ofStrategy: summary.chosen, fullEpochs: 10))
        #expect(record.attributes[PipelineAttribute.estimator] == estimator)
        #expect(record.attributes[PipelineAttribute.estimatorReason]?.contains("best Kendall tau") == true)
        #expect(Double(try #require(record.attributes[PipelineAttribute.selectionSeconds]))! > 6 * 100)
        for file in ["rank_table.csv", "rank_table.txt", "selection.json"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("report/selection/\(file)").path), "\(file) missing")
        }

        // The baseline was a reference, so its full training was not repeated.
        #expect(log.lines.contains { $0.contains("trial 0 k5-g1-c96-w320 was trained fully as a selection reference") })
        let snapshot = StudySnapshot(record: record, trials: try await storage.trials(studyID: record.id, states: nil))
        #expect(snapshot.retrained[0]?.ap50 == FakeEstimator.ap(.baseline) + 0.1)

        // The report shows the profile, the rank table and the speed-up with the selection's cost.
        let page = try String(contentsOf: directory.appendingPathComponent("report/index.html"), encoding: .utf8)
        #expect(page.contains("Layer profile") && page.contains("stage3.0.branch2"))
        #expect(page.contains("Estimator ranking") && page.contains(summary.chosen))
        let report = StudyReport(studies: [snapshot])
        #expect(report.speedUpTable.rows[0][7] != "-")
        await storage.close()
    }

    @Test func estimatorSelectRunsTheSelectionEvenWhenFullTrainingIsAffordable() async throws {
        let directory = try temporaryDirectory("pipeline-select")
        defer { try? FileManager.default.removeItem(at: directory) }
        // 8 trials of full training fit in 10 h: `auto` would train every trial fully.
        var config = try pipelineConfig(directory: directory, trials: 8, estimator: "select", hours: "10", references: 6)
        // The URL the pipeline reports (the storage itself is injected): its password is never printed.
        config.storage = "postgresql://edgenas:s3cret-pw@db.example:5432/nas"
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let log = LogLines()
        _ = try await SearchPipeline(config: config, storage: storage, components: fakeComponents, log: log.append).run()
        #expect(!log.lines.isEmpty && !log.lines.contains { $0.contains("s3cret-pw") })
        #expect(log.lines.contains { $0.contains("created in postgresql://edgenas:***@db.example:5432/nas") })
        let record = try await storage.study(named: "tiny")
        let summary = try decodeJSONText(EstimatorSelectionSummary.self, try #require(record.attributes[PipelineAttribute.estimatorSelection]))
        #expect(summary.references.count == 6)
        #expect(record.attributes[PipelineAttribute.estimator] == EstimatorCatalog.name(ofStrategy: summary.chosen, fullEpochs: 10))
        #expect(record.attributes[PipelineAttribute.estimatorReason]?.hasPrefix("the config asks for the selection's choice") == true)

        // Every stage says what it does while it runs, in order: the profile, the selection (a
        // line per reference, with the time left) and the plan it informs, the search (a line
        // per trial with its ETA), the retraining and the report.
        let stages = ["profile:", "select:", "plan:", "search:", "retrain:", "report:"]
        let firstLines = stages.map { stage in log.lines.firstIndex { $0.hasPrefix(stage) } }
        #expect(firstLines.allSatisfy { $0 != nil }, "stages without a line: \(zip(stages, firstLines).filter { $0.1 == nil }.map(\.0))")
        #expect(firstLines.compactMap { $0 } == firstLines.compactMap { $0 }.sorted(), "stages out of order: \(log.lines)")
        #expect(log.lines.filter { $0.hasPrefix("select: [") && $0.contains("trained") }.count == 6)
        #expect(log.lines.contains { $0.hasPrefix("select: [") && $0.contains("left") })
        #expect(log.lines.filter { $0.hasPrefix("search: ") && $0.contains("ETA") }.count == 8)
        await storage.close()
    }

    @Test func aPredictorEstimatorLearnsFromTheSelectionsReferences() throws {
        let references = try DetectorHeadSpace(kernelSizes: [3, 5], groups: [1, 2], channels: [24, 48, 96], inputWidths: [224, 320])
            .sample(12, seed: 2)
        let truth = references.map { FakeEstimator.ap($0) }
        let summary = EstimatorSelectionSummary(rows: [], chosen: "ols",
                                                references: zip(references, truth).map { .init(architecture: $0.description, ap50: $1) })
        let directory = try temporaryDirectory("predictor")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try pipelineConfig(directory: directory, trials: 5, estimator: "predictor:ols")
        _ = try SyntheticDataWriter().write(to: directory.appendingPathComponent("data"), seed: 3, trainCount: 2, valCount: 2)
        let splits = try DatasetSplits.load(config.dataset)
        let run = try DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(config.training, seed: 0))
        let estimator = try EstimatorCatalog.make("predictor:ols", run: run, training: config.training, selection: summary,
                                                  headValues: DetectorHeadSpace(kernelSizes: [3, 5], groups: [1, 2, 4, 8],
                                                                                channels: [24, 48, 72, 96], inputWidths: [224, 256, 320]))
        #expect(estimator.name == "predictor:ols" && !estimator.isFullFidelity)
        // The fake AP is linear in the ordinal features except for log2(groups), so least squares
        // on 12 references orders held-out architectures almost as the truth does.
        let heldOut = try DetectorHeadSpace(kernelSizes: [3, 5], groups: [1, 2], channels: [24, 48, 96], inputWidths: [224, 320])
            .allArchitectures().filter { !references.contains($0) }
        let scores = try heldOut.map { try estimator.estimate($0, trialNumber: 0).score }
        #expect(try RankStatistics.kendallTau(scores, heldOut.map { FakeEstimator.ap($0) }) > 0.8)
        // Without references there is nothing to learn from.
        #expect(throws: EstimatorError.needsSelection(estimator: "predictor:ols")) {
            try EstimatorCatalog.make("predictor:ols", run: run, training: config.training)
        }
    }

    @Test func rerunningContinuesTheSameStudy() async throws {
        let directory = try temporaryDirectory("resume")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("study.db").path
        let first = try SQLiteStorage(path: path)
        try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 4, estimator: "short"), storage: first,
                                 components: fakeComponents, log: { _ in }).run()
        await first.close()

        let second = try SQLiteStorage(path: path)
        let log = LogLines()
        try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 7, estimator: "short"), storage: second,
                                 components: fakeComponents, log: log.append).run()
        let record = try await second.study(named: "tiny")
        let trials = try await second.trials(studyID: record.id, states: nil)
        #expect(trials.map(\.number) == Array(0..<7))
        #expect(trials.allSatisfy { $0.state == .complete })
        // One baseline only, and the rerun said it resumed.
        let baselines = trials.filter { TrialRecord($0)?.architecture == "k5-g1-c96-w320" }
        #expect(baselines.count >= 1 && baselines[0].number == 0)
        #expect(log.lines.contains { $0.contains("resumed") && $0.contains("4 complete trials") })
        await second.close()
    }

    @Test func aRepeatedArchitectureTakesTheEarlierTrialsResults() async throws {
        let directory = try temporaryDirectory("repeat")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let config = try pipelineConfig(directory: directory, trials: 3, estimator: "short")
        try await SearchPipeline(config: config, storage: storage, components: fakeComponents, log: { _ in }).run()
        // The baseline proposed again, as a sampler may do in a finite space.
        let study = try await Study(name: "tiny", space: config.searchSpace, directions: config.directions, storage: storage,
                                    sampler: RandomSampler(), seed: 3)
        _ = try await study.enqueue(ArchitectureSpace.parameters(of: .baseline, in: config.searchSpace))
        // A latency backend that fails shows the repeat is not measured again.
        var components = fakeComponents
        components.latency = FailingLatency()
        try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 4, estimator: "short"), storage: storage,
                                 components: components, log: { _ in }).run()
        let record = try await storage.study(named: "tiny")
        let trials = try await storage.trials(studyID: record.id, states: nil)
        let repeated = try #require(trials.first { $0.number == 3 })
        #expect(repeated.state == .complete && TrialRecord(repeated)?.duplicateOf == 0)
        #expect(repeated.values == trials[0].values && TrialRecord(repeated)?.latencyMilliseconds == TrialRecord(trials[0])?.latencyMilliseconds)
        // The report lists the architecture once.
        let chosen = StudySnapshot(record: record, trials: trials).chosen
        #expect(chosen.filter { TrialRecord($0.trial)?.architecture == "k5-g1-c96-w320" }.count == 1)
        await storage.close()
    }

    @Test func aStudyFromAnotherSpaceIsNotContinued() async throws {
        let directory = try temporaryDirectory("mismatch")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 2, estimator: "short"), storage: storage,
                                 components: fakeComponents, log: { _ in }).run()
        var other = try pipelineConfig(directory: directory, trials: 3, estimator: "short")
        other.searchSpace = try SearchSpace(["kernel": .categorical([.int(3), .int(5)])])
        await #expect(throws: PipelineError.self) {
            try await SearchPipeline(config: other, storage: storage, components: fakeComponents, log: { _ in }).run()
        }
        await storage.close()
    }

    /// An NPU compiler's count of CPU operators goes into every trial's record.
    @Test func theNPUsFallbackOperatorsAreRecorded() async throws {
        let directory = try temporaryDirectory("pipeline-npu")
        defer { try? FileManager.default.removeItem(at: directory) }
        var components = fakeComponents
        components.latency = FakeNPULatency()
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        try await SearchPipeline(config: try pipelineConfig(directory: directory, trials: 6, estimator: "short"), storage: storage,
                                 components: components, log: { _ in }).run()
        let trials = try await storage.trials(studyID: try await storage.study(named: "tiny").id, states: [.complete])
        #expect(trials.count == 6)
        for trial in trials {
            let record = try #require(TrialRecord(trial))
            let architecture = try DetectorArchitecture(shortName: record.architecture)
            #expect(record.npuFallbackOperators == (architecture.headGroups > 1 ? 1 : 0))
        }
    }

    /// `npu_fallback_ops: 0`: a network with an operator the NPU lacks is infeasible, so never
    /// on the front; on a backend that does not count them, the trial fails with the key named.
    @Test func theFallbackConstraintKeepsNetworksWithCPUOperatorsOffTheFront() async throws {
        let directory = try temporaryDirectory("pipeline-npu-constraint")
        defer { try? FileManager.default.removeItem(at: directory) }
        var components = fakeComponents
        components.latency = FakeNPULatency()
        var config = try pipelineConfig(directory: directory, trials: 8, estimator: "short")
        config.constraints = [SearchConstraint(metric: .npuFallbackOps, maximum: 0)]
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        try await SearchPipeline(config: config, storage: storage, components: components, log: { _ in }).run()
        let study = try await Study(name: "tiny", space: config.searchSpace, directions: config.directions, storage: storage)
        let trials = try await study.trials().filter { $0.state == .complete }
        let groupedIDs = Set(try trials.filter { try DetectorArchitecture(shortName: TrialRecord($0)!.architecture).headGroups > 1 }.map(\.id))
        #expect(!groupedIDs.isEmpty && groupedIDs.count < trials.count)
        for trial in trials { #expect(trial.constraints == [groupedIDs.contains(trial.id) ? 1 : 0]) }
        let front = try await study.bestTrials()
        #expect(!front.isEmpty && front.allSatisfy { !groupedIDs.contains($0.id) })

        let error = await #expect(throws: PipelineError.self) {
            try await SearchPipeline.evaluate(try await study.ask(), base: .baseline, objectives: [.ap50, .latency],
                                              constraints: config.constraints, latency: FakeLatency(), estimator: FakeEstimator())
        }
        #expect(error == .unmeasuredConstraint("npu_fallback_ops", backend: "fake-macs"))
        await storage.close()
    }

    @Test func spreadKeepsBothEndsOfTheFront() {
        let front = (0..<10).map { FrozenTrial(id: $0, number: $0, state: .complete) }
        #expect(SearchPipeline.spread(front, count: 3).map(\.number) == [0, 5, 9])
        #expect(SearchPipeline.spread(front, count: 12).count == 10)
        #expect(SearchPipeline.spread(front, count: 1).map(\.number) == [0])
    }
}
