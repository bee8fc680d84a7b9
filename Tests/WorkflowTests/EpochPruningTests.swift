import Estimators
import Foundation
import Search
import Storage
import Testing
import Vision
@testable import Workflow

@Suite struct EpochPruningTests {
    @Test func thePrunerKeyTakesAKindOrAMappingOfSettings() throws {
        func parse(_ pruner: String) throws -> PrunerSetting {
            try ProjectConfig.parse(yaml: "dataset: {path: d}\nbudget: {trials: 4}\npruner: \(pruner)", baseDirectory: URL(fileURLWithPath: "/p")).pruner
        }
        #expect(try parse("median") == PrunerSetting(kind: .median, startupTrials: 5, minEpochs: 1, reductionFactor: 3))
        #expect(try parse("none").pruner == nil)
        let halving = try parse("{kind: successive_halving, min_epochs: 2, reduction_factor: 4}")
        #expect(halving == PrunerSetting(kind: .successiveHalving, minEpochs: 2, reductionFactor: 4))
        let pruner = try #require(halving.pruner as? SuccessiveHalvingPruner)
        #expect(pruner.minResource == 2 && pruner.reductionFactor == 4)
        #expect(try parse("{kind: hyperband}").pruner is HyperbandPruner)
        let median = try #require(try parse("{kind: median, startup_trials: 0, min_epochs: 3}").pruner as? PercentilePruner)
        #expect(median.percentile == 50 && median.startupTrials == 0 && median.warmupSteps == 3)
    }

    /// A finished trial the pipeline recorded, with AP@0.5 per epoch.
    static func trial(_ id: Int, state: TrialState = .complete, latency: Double, parameters: Int = 1000,
                      epochAP: [Int: Double]) throws -> FrozenTrial {
        let record = TrialRecord(architecture: "a\(id)", latencyMilliseconds: latency, latencyInterquartileRange: 0, latencyBackend: "fake",
                                 parameters: parameters, memoryMegabytes: 1, multiplyAccumulates: 1, estimator: "full",
                                 score: epochAP.max { $0.key < $1.key }!.value, ap50: nil, estimateSeconds: 1, estimateEpochs: epochAP.count)
        return FrozenTrial(id: id, number: id, state: state, values: state == .complete ? [record.score, latency] : nil,
                           intermediateValues: epochAP, userAttributes: [TrialRecord.attribute: try jsonText(record)])
    }

    @Test func aTrialIsJudgedOnlyAgainstTrialsAtLeastAsGoodInEveryOtherObjective() throws {
        let trials = [
            try Self.trial(0, latency: 5, parameters: 900, epochAP: [1: 0.5]),
            try Self.trial(1, latency: 8, parameters: 900, epochAP: [1: 0.6]),   // slower
            try Self.trial(2, latency: 4, parameters: 2000, epochAP: [1: 0.6]),  // more parameters
            try Self.trial(3, state: .pruned, latency: 5, parameters: 1000, epochAP: [1: 0.1]),
            try Self.trial(4, state: .failed, latency: 1, epochAP: [1: 0.9]),
            FrozenTrial(id: 5, number: 5, state: .complete, values: [0.9, 1]),  // not the pipeline's: no record
        ]
        let pruning = EpochPruning(pruner: PercentilePruner.median(startupTrials: 0), objectives: [.ap50, .latency, .params], trials: trials)
        let metrics: [SearchObjective: Double] = [.latency: 5, .params: 1000]
        #expect(pruning.rivals(ofTrial: 9, metrics: metrics).map(\.id) == [0, 3])
        #expect(EpochPruning(pruner: pruning.pruner, objectives: [.ap50, .latency], trials: trials)
            .rivals(ofTrial: 9, metrics: metrics).map(\.id) == [0, 2, 3])
        // The median of the complete rivals (trial 0 alone: 0.5) is the bar.
        #expect(pruning.shouldStop(trialID: 9, number: 9, intermediateValues: [1: 0.4], metrics: metrics))
        #expect(!pruning.shouldStop(trialID: 9, number: 9, intermediateValues: [1: 0.55], metrics: metrics))
        // Faster than every trial: no rival, never stopped.
        #expect(!pruning.shouldStop(trialID: 9, number: 9, intermediateValues: [1: 0.01], metrics: [.latency: 0.5, .params: 1000]))
    }

    /// In the fake world a trial's AP@0.5 climbs linearly to its final value over 4 epochs, so a
    /// trial below its rivals' median at an epoch ends below them: the rule can only prune
    /// trials that a complete trial dominates, and the front loses nothing.
    @Test func aPrunedSearchStopsDominatedTrialsEarlyAndKeepsTheFront() async throws {
        let directory = try temporaryDirectory("pipeline-pruned")
        defer { try? FileManager.default.removeItem(at: directory) }
        let yaml = """
            name: pruned
            dataset: {path: data}
            budget: {trials: 24}
            estimator: short
            sampler: random
            pruner: {kind: median, startup_trials: 2, min_epochs: 1}
            storage: sqlite://study.db
            seed: 5
            training: {epochs: 10, short_epochs: 4}
            retrain: {candidates: 3}
            output: report
            """
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        let log = LogLines()
        try await SearchPipeline(config: try ProjectConfig.parse(yaml: yaml, baseDirectory: directory), storage: storage,
                                 components: fakeComponents, log: log.append).run()
        let trials = try await storage.trials(studyID: try await storage.study(named: "pruned").id, states: nil)
        let complete = trials.filter { $0.state == .complete }, pruned = trials.filter { $0.state == .pruned }
        // Pruned trials count toward the budget.
        #expect(complete.count + pruned.count == 24 && trials.count == 24)
        #expect(!pruned.isEmpty)
        for trial in complete where TrialRecord(trial)?.duplicateOf == nil {
            #expect(trial.intermediateValues.keys.sorted() == [1, 2, 3, 4])
        }
        for trial in pruned {
            let record = try #require(TrialRecord(trial))
            let epochs = try #require(record.prunedAfterEpoch)
            #expect(trial.intermediateValues.keys.sorted() == Array(1...epochs) && record.score == trial.intermediateValues[epochs])
            let final = FakeEstimator.ap(try DetectorArchitecture(shortName: record.architecture))
            #expect(complete.contains { other in
                let values = other.values!
                return values[1] <= record.latencyMilliseconds && values[0] > final
            }, "trial \(trial.number) \(record.architecture) was pruned though no complete trial dominates it")
        }
        // The fastest network the search met trained to the end.
        let fastest = try #require(trials.min { TrialRecord($0)!.latencyMilliseconds < TrialRecord($1)!.latencyMilliseconds })
        #expect(fastest.state == .complete)
        #expect(log.lines.contains { $0.contains("pruned after 1 epoch(s)") })
        #expect(log.lines.contains { $0.hasPrefix("plan: pruner median") })
        let csv = try String(contentsOf: directory.appendingPathComponent("report/trials.csv"), encoding: .utf8)
        #expect(csv.contains(",pruned,") && csv.contains("after 1 epoch(s)"))
    }
}
