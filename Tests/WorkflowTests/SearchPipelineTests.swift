import DetectionData
import Foundation
@testable import Hardware
import Search
import Storage
import Testing
import Vision
@testable import Workflow

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

/// A low-fidelity "short" estimator whose AP is a fixed function of the architecture: wider
/// heads, kernel 5, fewer groups and larger inputs score higher, as they tend to.
struct FakeEstimator: PerformanceEstimator {
    var name: String { "short" }
    var isFullFidelity: Bool { false }

    static func ap(_ a: DetectorArchitecture) -> Double {
        0.3 + 0.25 * Double(a.headChannels) / 96 + (a.headKernelSize == 5 ? 0.05 : 0) - 0.02 * log2(Double(a.headGroups))
            + 0.1 * Double(a.inputSizePixels - 224) / 96
    }

    func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
        PerformanceEstimate(score: Self.ap(architecture), ap50: Self.ap(architecture), seconds: 0.01, epochs: 1)
    }
}

/// Full training in the fake world: 0.1 above the short estimate.
let fakeComponents = PipelineComponents(
    latency: FakeLatency(), estimator: { _ in FakeEstimator() }, fullTrainingSeconds: { _ in 100 },
    retrain: { architecture, _ in PerformanceEstimate(score: FakeEstimator.ap(architecture) + 0.1, ap50: FakeEstimator.ap(architecture) + 0.1,
                                                      seconds: 2, epochs: 10) })

func temporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func pipelineConfig(directory: URL, trials: Int, estimator: String = "auto", hours: String = "0.01") throws -> ProjectConfig {
    try ProjectConfig.parse(yaml: """
        name: tiny
        dataset: {path: data}
        budget: {trials: \(trials), hours: \(hours)}
        estimator: \(estimator)
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
        #expect(baseline.userAttributes["architecture"] == "k5-g1-c96-w320")

        // The auto plan: 8 full trainings of 100 s do not fit in 0.01 h, so short training.
        #expect(record.attributes[PipelineAttribute.estimator] == "short")
        #expect(record.attributes[PipelineAttribute.estimatorReason]?.contains("do not fit in 0.01 h") == true)
        #expect(log.lines.contains { $0.hasPrefix("search: 8/8 complete") && $0.contains("front") && $0.contains("ETA") })

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
        }
        let svg = try String(contentsOf: reportDirectory.appendingPathComponent("pareto.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "<circle class=\"trial\"").count - 1 == complete.count + retrained.count)
        #expect(svg.contains("class=\"baseline\""))
        await storage.close()
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
        let baselines = trials.filter { $0.userAttributes["architecture"] == "k5-g1-c96-w320" }
        #expect(baselines.count >= 1 && baselines[0].number == 0)
        #expect(log.lines.contains { $0.contains("resumed") && $0.contains("4 complete trials") })
        await second.close()
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

    @Test func spreadKeepsBothEndsOfTheFront() {
        let front = (0..<10).map { FrozenTrial(id: $0, number: $0, state: .complete) }
        #expect(SearchPipeline.spread(front, count: 3).map(\.number) == [0, 5, 9])
        #expect(SearchPipeline.spread(front, count: 12).count == 10)
        #expect(SearchPipeline.spread(front, count: 1).map(\.number) == [0])
    }
}
