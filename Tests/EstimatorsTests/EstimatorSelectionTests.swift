import Estimation
import Foundation
import Testing
import Vision
import ZeroCostProxies
@testable import Estimators

/// A trainer whose results are known: reference i has true AP 0.1 + 0.05 i; its AP after epoch
/// e is the truth plus noise of alternating sign whose size shrinks with e (0.3 ((E - e)/E)^2),
/// so early budgets misorder neighbours and late ones do not; every epoch takes 10 s and every
/// validation 1 s. Epochs it was not asked to validate have NaN AP and validation loss.
final class FakeTrainer: ReferenceTrainer {
    let order: [DetectorArchitecture]
    private(set) var calls = 0
    private(set) var validatedEpochs: Set<Int> = []

    init(order: [DetectorArchitecture]) { self.order = order }

    static func truth(_ index: Int) -> Double { 0.1 + 0.05 * Double(index) }

    func train(_ architecture: DetectorArchitecture, epochs: Int, validatingAfter validatedEpochs: Set<Int>) throws -> ReferenceRun {
        calls += 1
        self.validatedEpochs = validatedEpochs
        let i = order.firstIndex(of: architecture)!
        let sign = i % 2 == 0 ? 1.0 : -1.0
        let ap = (1...epochs).map { e in
            validatedEpochs.contains(e) ? Self.truth(i) + sign * 0.3 * pow(Double(epochs - e) / Double(epochs), 2) : .nan
        }
        // Training losses that ignore the architecture except for a fixed pseudo-random offset.
        let offset = Double((i * 7919) % 13) / 100
        return ReferenceRun(architecture: architecture.description, trainingLosses: (1...epochs).map { 1 / Double($0) + offset },
                            validationAP: ap, validationLosses: ap.map { 1 - $0 }, epochSeconds: Array(repeating: 10, count: epochs),
                            evaluationSeconds: ap.map { $0.isNaN ? 0 : 1 }, parameterCount: 1000 + 10 * ((i * 7) % 10),
                            multiplyAccumulates: 50_000 + 100 * (i % 3))
    }
}

/// Proxies whose quality is known: synflow is the truth itself (tau 1, 0.5 s); the others are
/// a fixed scramble of it (0.2 s each).
struct FakeProxies: ProxyScorer {
    let order: [DetectorArchitecture]

    func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
        let i = order.firstIndex(of: architecture)!
        return ZeroCostProxy.allCases.map { proxy in
            proxy == .synflow ? ZeroCostProxyScore(proxy: proxy, score: FakeTrainer.truth(i), seconds: 0.5)
                : ZeroCostProxyScore(proxy: proxy, score: Double((i * 37 + proxy.rawValue.count) % 11), seconds: 0.2)
        }
    }
}

@Suite struct EstimatorSelectionTests {
    let architectures = try! DetectorHeadSpace(kernelSizes: [3, 5], groups: [1, 2], channels: [24, 48, 96], inputWidths: [160, 224])
        .sample(10, seed: 4)

    func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-selection-\(UUID().uuidString)")
    }

    @Test func ranksStrategiesWhereTheTruthIsKnown() throws {
        let trainer = FakeTrainer(order: architectures)
        let settings = SelectionSettings(epochs: 5, bootstrapResamples: 200, maxCostFraction: 0.25, seed: 1)
        let result = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: trainer, proxies: FakeProxies(order: architectures))
        #expect(result.table.rows.count >= 24)
        #expect(result.trueAP == (0..<10).map(FakeTrainer.truth))
        func row(_ name: String) throws -> StrategyRanking { try #require(result.table.rows.first { $0.name == name }, "\(name)") }
        #expect(abs(try row("val_ap@4ep").kendallTau - 1) < 1e-12)
        #expect(try row("val_ap@1ep").kendallTau < 0.5)
        #expect(abs(try row("synflow").kendallTau - 1) < 1e-12)
        // Cost of AP after 2 epochs: 2 epochs of 10 s + the validation after the second.
        #expect(try row("val_ap@2ep").secondsPerArchitecture == 21)
        #expect(try row("extrapolate_power_law@3ep").secondsPerArchitecture == 33)
        #expect(try row("sotl@3ep").secondsPerArchitecture == 30)
        // Ties at tau 1 go to the cheaper strategy: synflow (0.5 s) before val_ap@4ep (41 s).
        #expect(result.table.rows[0].name == "synflow")
        #expect(result.chosen == "synflow")
        #expect(result.meanFullTrainingSeconds == 51)
        #expect(result.strategies.filter { $0.kind == .predictor }.count == 8)
        // Every predictor produced out-of-fold predictions for every reference.
        for predictor in result.strategies where predictor.kind == .predictor {
            let finite = predictor.scores.allSatisfy { $0.isFinite }
            #expect(finite, "\(predictor.name)")
        }
    }

    @Test func affordabilityExcludesExpensiveStrategies() throws {
        var settings = SelectionSettings(epochs: 5, bootstrapResamples: 50, maxCostFraction: 0.5, seed: 1)
        settings.epochBudgets = [1, 4]
        let proxies = ScrambledOnly(order: architectures)
        let result = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: FakeTrainer(order: architectures), proxies: proxies)
        // val_ap@4ep (41 s) exceeds half a full training (25.5 s); the choice is the best of the rest.
        let affordable = result.table.rows.filter { $0.secondsPerArchitecture <= 25.5 }
        #expect(result.chosen == affordable.first?.name)
        #expect(result.chosen != "val_ap@4ep")
    }

    @Test func cachedReferencesAreNotRetrained() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = SelectionSettings(epochs: 4, bootstrapResamples: 50, seed: 2, trainingKey: "fake")
        let first = FakeTrainer(order: architectures)
        var firstLog: [String] = []
        let a = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: first, proxies: FakeProxies(order: architectures), cache: SelectionCache(directory: directory),
            log: { firstLog.append($0) })
        #expect(first.calls == 10)
        // Each reference that did work says how long the rest will take; the last has none left.
        #expect(firstLog.filter { $0.contains("s for the") }.count == 9)
        #expect(firstLog.contains { $0.hasPrefix("[1/10]") && $0.hasSuffix("for the 9 left") })
        let second = FakeTrainer(order: architectures)
        var secondLog: [String] = []
        let b = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: second, proxies: FakeProxies(order: architectures), cache: SelectionCache(directory: directory),
            log: { secondLog.append($0) })
        #expect(second.calls == 0)
        // Nothing left to do, so no estimate (it used to say "about 0 s").
        #expect(!secondLog.contains { $0.contains("s for the") })
        #expect(a.trueAP == b.trueAP)
        // Same taus from the cached records (the order of equal taus follows measured predictor times).
        #expect(Dictionary(uniqueKeysWithValues: a.table.rows.map { ($0.name, $0.kendallTau) })
            == Dictionary(uniqueKeysWithValues: b.table.rows.map { ($0.name, $0.kendallTau) }))

        var other = settings
        other.epochs = 6
        #expect(throws: EstimatorSelectionError.self) {
            try EstimatorSelection(settings: other).run(
                architectures: architectures, trainer: second, proxies: FakeProxies(order: architectures), cache: SelectionCache(directory: directory))
        }
    }

    /// A reference is validated after the epochs the ranked strategies read and the last one:
    /// budget 1 reads epoch 1 (val_ap, val_loss), budget 4 also epochs 1-4 (the power law's fit).
    @Test func referencesAreValidatedOnlyWhereAStrategyReads() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var settings = SelectionSettings(epochs: 10, epochBudgets: [1], bootstrapResamples: 50, seed: 2, trainingKey: "fake")
        #expect(settings.validatedEpochs == [0, 1, 10])
        let trainer = FakeTrainer(order: architectures)
        let result = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: trainer, proxies: FakeProxies(order: architectures), cache: SelectionCache(directory: directory))
        #expect(trainer.validatedEpochs == [0, 1, 10])
        #expect(result.strategies.filter { $0.kind == .learningCurve }.allSatisfy { $0.scores.allSatisfy(\.isFinite) })
        #expect(result.meanFullTrainingSeconds == 101)
        #expect(SelectionSettings(epochs: 10, epochBudgets: [1, 4]).validatedEpochs == [0, 1, 2, 3, 4, 10])

        // Cached runs validated for budget 1 cannot score budget 2: named, not ranked as NaN.
        settings.epochBudgets = [2]
        #expect(throws: EstimatorSelectionError.missingValidation(architecture: architectures[0].description, epoch: 2)) {
            try EstimatorSelection(settings: settings).run(
                architectures: architectures, trainer: trainer, proxies: FakeProxies(order: architectures), cache: SelectionCache(directory: directory))
        }
    }

    @Test func anInfiniteProxyScoreIsCachedAndRanksLowest() throws {
        // A log-scale proxy of a collapsed network is -inf: the selection must keep it (the lowest
        // score) in its cache and files instead of failing to write JSON.
        struct CollapsedFirst: ProxyScorer {
            let order: [DetectorArchitecture]
            func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
                try FakeProxies(order: order).scores(architecture).map { score in
                    var score = score
                    if score.proxy == .synflow, architecture == order[0] { score.score = -.infinity }
                    return score
                }
            }
        }
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = SelectionSettings(epochs: 4, bootstrapResamples: 50, seed: 2, trainingKey: "fake")
        let run = {
            try EstimatorSelection(settings: settings).run(architectures: self.architectures, trainer: FakeTrainer(order: self.architectures),
                                                           proxies: CollapsedFirst(order: self.architectures),
                                                           cache: SelectionCache(directory: directory))
        }
        let first = try run()
        try first.write(to: directory.appendingPathComponent("out"))
        let again = try run()
        let synflow = { (result: SelectionResult) in result.strategies.first { $0.name == "synflow" }!.scores }
        #expect(synflow(first)[0] == -.infinity && synflow(again) == synflow(first))
        // Architecture 0 has the lowest truth too, so synflow still orders every pair correctly.
        #expect(first.table.rows.first { $0.name == "synflow" }?.kendallTau == 1)
        #expect(synflow(try SelectionResult.read(from: directory.appendingPathComponent("out/selection.json")))[0] == -.infinity)
    }

    @Test func writesTablesAndReadsTheResultBack() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try EstimatorSelection(settings: SelectionSettings(epochs: 4, bootstrapResamples: 50)).run(
            architectures: architectures, trainer: FakeTrainer(order: architectures), proxies: FakeProxies(order: architectures))
        try result.write(to: directory)
        let back = try SelectionResult.read(from: directory.appendingPathComponent("selection.json"))
        #expect(back.table.rows.map(\.name) == result.table.rows.map(\.name))
        #expect(back.chosen == result.chosen)
        let csv = try String(contentsOf: directory.appendingPathComponent("rank_table.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == result.table.rows.count + 1)
        #expect(try String(contentsOf: directory.appendingPathComponent("rank_table.txt"), encoding: .utf8).contains("chosen: synflow"))
    }

    @Test func plannerScalesLearningCurveCostsOnly() throws {
        let result = try EstimatorSelection(settings: SelectionSettings(epochs: 5, bootstrapResamples: 50)).run(
            architectures: architectures, trainer: FakeTrainer(order: architectures), proxies: FakeProxies(order: architectures))
        // The references' full training is 51 s; plan for a 510 s training: learning-curve costs x10.
        let costs = Dictionary(uniqueKeysWithValues: result.strategyCosts(fullTrainingSeconds: 510).map { ($0.name, $0.secondsPerTrial) })
        #expect(costs["val_ap@2ep"] == 210)
        #expect(costs["synflow"] == 0.5)
        let plan = try result.plan(fullTrainingSeconds: 510, trials: 100, frontSize: 3)
        let synflow = try #require(plan.rows.first { $0.strategy == "synflow" })
        // 100 x 0.5 s search, 3 x 510 s retraining, plus the selection's own cost.
        #expect(synflow.searchSeconds == 50)
        #expect(synflow.retrainingSeconds == 1530)
        #expect(abs(synflow.totalSeconds - (50 + 1530 + result.selectionSeconds)) < 1e-9)
        #expect(abs(synflow.overallSpeedup - 51_000 / synflow.totalSeconds) < 1e-12)
    }

    @Test func rejectsBadSettings() throws {
        #expect(throws: EstimatorSelectionError.self) {
            try EstimatorSelection(settings: SelectionSettings(epochs: 3, epochBudgets: [3])).run(
                architectures: architectures, trainer: FakeTrainer(order: architectures), proxies: FakeProxies(order: architectures))
        }
        #expect(throws: EstimatorSelectionError.self) {
            try EstimatorSelection(settings: SelectionSettings(epochs: 3)).run(
                architectures: Array(architectures.prefix(3)), trainer: FakeTrainer(order: architectures), proxies: FakeProxies(order: architectures))
        }
    }
}

/// Every proxy is a scramble (so no proxy ties the best learning-curve strategy).
struct ScrambledOnly: ProxyScorer {
    let order: [DetectorArchitecture]
    func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
        let i = order.firstIndex(of: architecture)!
        return ZeroCostProxy.allCases.map { ZeroCostProxyScore(proxy: $0, score: Double((i * 37 + $0.rawValue.count) % 11), seconds: 0.2) }
    }
}

@Test func inheritedAPIsAStrategyOfRunsFromPretrainedWeights() {
    let strategy = LearningCurveStrategy.inheritedAP(fullEpochs: 10)
    #expect(strategy.name == "val_ap@0ep")
    #expect(LearningCurveStrategy(name: "val_ap@0ep", fullEpochs: 10) == strategy)
    #expect(LearningCurveStrategy(name: "sotl@0ep", fullEpochs: 10) == nil)
    let fineTuned = ReferenceRun(architecture: "k3-g1-c48-w224", trainingLosses: [1, 0.5], validationAP: [0.4, 0.5], validationLosses: [1, 1],
                                 epochSeconds: [10, 10], evaluationSeconds: [2, 2], parameterCount: 1, multiplyAccumulates: 1,
                                 initialAP: 0.3, initialSeconds: 3, inheritedShare: 1)
    #expect(strategy.score(fineTuned) == 0.3 && strategy.cost(fineTuned) == 3)
    var scratch = fineTuned
    (scratch.initialAP, scratch.initialSeconds) = (nil, nil)
    #expect(strategy.score(scratch).isNaN)
}
