// The two-stage selection: train K reference architectures fully, score them with every
// estimation strategy, rank the strategies by how well they order the references' true AP.
import Estimation
import Randomness
import Foundation
import Vision
import ZeroCostProxies

/// Settings of a selection run (see docs/estimators.md, "Two-stage selection").
public struct SelectionSettings: Codable, Sendable, Hashable {
    /// Epochs of a full training; the truth is AP@0.5 after the last one.
    public var epochs: Int
    /// Epoch budgets of the learning-curve strategies (each in 1 ..< epochs); every budget of
    /// every learning-curve estimator is a strategy of its own.
    public var epochBudgets: [Int]
    /// Folds of the predictors' cross-validation on the K references (at most K).
    public var folds: Int
    public var bootstrapResamples: Int
    public var confidenceLevel: Double
    /// A strategy is affordable when one evaluation costs at most this fraction of a full training.
    public var maxCostFraction: Double
    /// Seeds the predictors' folds and models and the bootstrap.
    public var seed: UInt64
    /// Whatever else determines a training result (dataset, batch size, learning rate, proxy
    /// minibatch), as text: cached results made under another key are not reused.
    public var trainingKey: String

    public init(epochs: Int, epochBudgets: [Int]? = nil, folds: Int = 5, bootstrapResamples: Int = 1000,
                confidenceLevel: Double = 0.95, maxCostFraction: Double = 0.25, seed: UInt64 = 0, trainingKey: String = "") {
        self.epochs = epochs
        self.epochBudgets = epochBudgets ?? Array(1..<max(1, epochs))
        self.folds = folds
        self.bootstrapResamples = bootstrapResamples
        self.confidenceLevel = confidenceLevel
        self.maxCostFraction = maxCostFraction
        self.seed = seed
        self.trainingKey = trainingKey
    }

    /// The epochs after which a reference is validated: those the ranked learning-curve
    /// strategies read (0, the starting network, for a reference from pretrained weights) and
    /// the last, whose AP@0.5 is the truth. Validating the others would cost a pass over the
    /// validation split each and inform no strategy.
    public var validatedEpochs: Set<Int> {
        epochBudgets.reduce(into: [0, epochs]) { result, budget in
            for strategy in LearningCurveStrategy.all(epochs: budget, fullEpochs: epochs) { result.formUnion(strategy.validatedEpochs) }
        }
    }

    func validate() throws {
        func require(_ ok: Bool, _ name: String, _ value: CustomStringConvertible, _ expected: String) throws {
            if !ok { throw EstimatorSelectionError.invalidSetting(name: name, value: value.description, expected: expected) }
        }
        try require(epochs >= 2, "epochs", epochs, ">= 2 (one budget below the full training at least)")
        try require(!epochBudgets.isEmpty && epochBudgets.allSatisfy { (1..<epochs).contains($0) }, "epochBudgets",
                    epochBudgets, "values in 1...\(epochs - 1)")
        try require(folds >= 2, "folds", folds, ">= 2")
        try require(bootstrapResamples >= 1, "bootstrapResamples", bootstrapResamples, ">= 1")
        try require(confidenceLevel > 0 && confidenceLevel < 1, "confidenceLevel", confidenceLevel, "in (0, 1)")
        try require(maxCostFraction > 0, "maxCostFraction", maxCostFraction, "> 0")
    }

    /// The fields that decide cached results, where they differ.
    func differences(from other: SelectionSettings) -> [(String, String, String)] {
        var result: [(String, String, String)] = []
        if epochs != other.epochs { result.append(("epochs", "\(epochs)", "\(other.epochs)")) }
        if trainingKey != other.trainingKey { result.append(("trainingKey", trainingKey, other.trainingKey)) }
        return result
    }
}

/// Where a strategy's cost comes from, which decides how the planner scales it.
public enum StrategyKind: String, Codable, Sendable, Hashable {
    /// A fraction of a training run: scales with the full-training time.
    case learningCurve = "learning_curve"
    /// A model fitted on the fully trained references: its per-trial cost is the prediction.
    case predictor
    /// A zero-cost proxy on one minibatch.
    case proxy
}

/// A strategy with its per-architecture scores (aligned with the references) and cost.
public struct SelectionStrategy: Codable, Sendable, Hashable {
    public var name: String
    public var kind: StrategyKind
    /// Higher = predicted better; NaN where the strategy failed on that architecture.
    public var scores: [Double]
    /// Mean seconds to evaluate one architecture.
    public var secondsPerArchitecture: Double
    /// Epochs trained, for learning-curve strategies.
    public var epochs: Int?
}

/// Everything a selection produced; `selection.json` holds it.
public struct SelectionResult: Codable, Sendable, Hashable {
    public var settings: SelectionSettings
    /// The references, in order.
    public var architectures: [String]
    /// AP@0.5 after full training, per reference.
    public var trueAP: [Double]
    public var strategies: [SelectionStrategy]
    public var table: StrategyRankTable
    /// The best affordable strategy (nil when none is affordable).
    public var chosen: String?
    /// Mean seconds of one full training (with its final validation) over the references.
    public var meanFullTrainingSeconds: Double
    /// Seconds the selection itself cost: every reference's training and per-epoch validation,
    /// the proxies and the predictors' cross-validation. Each proxy counts at its own cost, the
    /// pass it shares with others included, so the proxies' part is an upper bound.
    public var selectionSeconds: Double

    public func strategy(named name: String) -> SelectionStrategy? { strategies.first { $0.name == name } }

    /// The rank table as aligned text.
    public var text: String {
        var lines = [String(format: "%-4@ %-30@ %7@ %-17@ %7@ %10@ %8@", "rank", "strategy", "tau", "95% CI", "rho", "s/arch", "x full")]
        for (index, row) in table.rows.enumerated() {
            let ci = String(format: "[%.3f, %.3f]", row.kendallTauInterval.lower, row.kendallTauInterval.upper)
            let mark = row.name == chosen ? " <- chosen" : ""
            lines.append(String(format: "%-4d %-30@ %7.3f %-17@ %7.3f %10.3f %8.4f", index + 1, row.name, row.kendallTau, ci,
                                row.spearmanRho, row.secondsPerArchitecture, row.secondsPerArchitecture / meanFullTrainingSeconds) + mark)
        }
        lines.append(String(format: "K = %d references, %d epochs each; full training %.1f s (mean); selection cost %.1f s; "
                            + "affordable = at most %.0f%% of a full training", architectures.count, settings.epochs,
                            meanFullTrainingSeconds, selectionSeconds, settings.maxCostFraction * 100))
        lines.append("chosen: " + (chosen ?? "none affordable"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes rank_table.csv, rank_table.txt and selection.json into `directory`.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try table.csv.write(to: directory.appendingPathComponent("rank_table.csv"), atomically: true, encoding: .utf8)
        try text.write(to: directory.appendingPathComponent("rank_table.txt"), atomically: true, encoding: .utf8)
        try SelectionJSON.encoder().encode(self).write(to: directory.appendingPathComponent("selection.json"), options: .atomic)
    }

    public static func read(from url: URL) throws -> SelectionResult {
        try SelectionJSON.decoder().decode(SelectionResult.self, from: Data(contentsOf: url))
    }
}

/// JSON of the selection's files. Scores may be infinite (a log-scale proxy of a collapsed
/// network is -inf, the lowest rank) or NaN (a missing score), which plain JSON cannot hold.
enum SelectionJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// Runs the selection (see `run`).
public struct EstimatorSelection {
    public var settings: SelectionSettings

    public init(settings: SelectionSettings) { self.settings = settings }

    /// Trains each architecture fully with `trainer` and scores it with `proxies` (or reads both
    /// from `cache`), then ranks every strategy against the references' final AP.
    /// `log` receives one line per step.
    public func run(
        architectures: [DetectorArchitecture], trainer: any ReferenceTrainer, proxies: any ProxyScorer,
        cache: SelectionCache? = nil, log: (String) -> Void = { _ in }
    ) throws -> SelectionResult {
        try settings.validate()
        guard architectures.count >= 4, Set(architectures).count == architectures.count else {
            throw EstimatorSelectionError.invalidSetting(
                name: "architectures", value: "\(architectures.count) (\(Set(architectures).count) distinct)",
                expected: "at least 4 distinct architectures")
        }
        try cache?.claim(for: settings)
        var runs: [ReferenceRun] = []
        var proxyScores: [[ZeroCostProxyScore]] = []
        // Wall time of each reference's step here (training, or replaying a queued job's, and
        // its proxies) when it did any work: the remaining references at their mean.
        var stepSeconds: [Double] = []
        func remaining(after index: Int) -> String {
            guard !stepSeconds.isEmpty, index + 1 < architectures.count else { return "" }
            let seconds = stepSeconds.reduce(0, +) / Double(stepSeconds.count) * Double(architectures.count - index - 1)
            return String(format: "; about %.0f s for the %d left", seconds, architectures.count - index - 1)
        }
        for (index, architecture) in architectures.enumerated() {
            let label = "[\(index + 1)/\(architectures.count)] \(architecture)"
            let stepStarted = Date()
            var worked = false
            if let cached = try cache?.reference(architecture) {
                runs.append(cached)
                log("\(label): training cached (AP@0.5 \(String(format: "%.4f", cached.finalAP)))")
            } else {
                let run = try trainer.train(architecture, epochs: settings.epochs, validatingAfter: settings.validatedEpochs)
                try cache?.store(run, for: architecture)
                runs.append(run)
                worked = true
                log("\(label): trained \(settings.epochs) epochs in \(String(format: "%.1f", run.fullTrainingSeconds)) s, "
                    + "AP@0.5 \(String(format: "%.4f", run.finalAP))")
            }
            guard runs[index].epochs == settings.epochs, runs[index].trainingLosses.count == settings.epochs,
                  runs[index].validationLosses.count == settings.epochs, runs[index].epochSeconds.count == settings.epochs else {
                throw EstimatorSelectionError.incompleteRun(architecture: architecture.description, epochs: runs[index].epochs,
                                                            expected: settings.epochs)
            }
            for epoch in settings.validatedEpochs.sorted() where epoch > 0 && runs[index].validationAP[epoch - 1].isNaN {
                throw EstimatorSelectionError.missingValidation(architecture: architecture.description, epoch: epoch)
            }
            if let cached = try cache?.proxies(architecture) {
                proxyScores.append(cached)
            } else {
                let scores = try proxies.scores(architecture)
                try cache?.store(scores, for: architecture)
                proxyScores.append(scores)
                worked = true
                log("\(label): proxies in \(String(format: "%.1f", scores.reduce(0) { $0 + $1.seconds })) s")
            }
            if worked {
                stepSeconds.append(Date().timeIntervalSince(stepStarted))
                let left = remaining(after: index)
                if !left.isEmpty { log("\(label): done\(left)") }
            }
        }
        var strategies = learningCurveStrategies(runs)
        let predictorStart = Date()
        strategies += try predictorStrategies(architectures, runs)
        let predictorSeconds = Date().timeIntervalSince(predictorStart)
        strategies += proxyStrategies(proxyScores)

        let truth = runs.map(\.finalAP)
        let table = try StrategyRankTable(
            trueScores: truth,
            strategies: strategies.map { StrategyScores(name: $0.name, scores: $0.scores, secondsPerArchitecture: $0.secondsPerArchitecture) },
            resamples: settings.bootstrapResamples, confidenceLevel: settings.confidenceLevel, seed: settings.seed)
        let meanFull = runs.reduce(0) { $0 + $1.fullTrainingSeconds } / Double(runs.count)
        let selectionSeconds = runs.reduce(0) { $0 + $1.epochSeconds.reduce(0, +) + $1.evaluationSeconds.reduce(0, +) + ($1.initialSeconds ?? 0) }
            + proxyScores.joined().reduce(0) { $0 + $1.seconds } + predictorSeconds
        let chosen = table.bestAffordable(maxSecondsPerArchitecture: settings.maxCostFraction * meanFull)?.name
        return SelectionResult(settings: settings, architectures: architectures.map(\.description), trueAP: truth,
                               strategies: strategies, table: table, chosen: chosen, meanFullTrainingSeconds: meanFull,
                               selectionSeconds: selectionSeconds)
    }

    // MARK: strategies

    /// Every `LearningCurveStrategy` at every epoch budget: AP after e epochs, SoTL, SoTL-E
    /// (e >= 2), validation loss, and (e >= 3) the power-law extrapolation to the full length;
    /// for references fine-tuned from pretrained weights also the AP before any training.
    func learningCurveStrategies(_ runs: [ReferenceRun]) -> [SelectionStrategy] {
        let inherited = runs.allSatisfy { $0.initialAP != nil } ? [LearningCurveStrategy.inheritedAP(fullEpochs: settings.epochs)] : []
        return inherited.map { strategy in
            SelectionStrategy(name: strategy.name, kind: .learningCurve, scores: runs.map(strategy.score),
                              secondsPerArchitecture: runs.reduce(0) { $0 + strategy.cost($1) } / Double(runs.count), epochs: 0)
        } + settings.epochBudgets.sorted().flatMap { e in
            LearningCurveStrategy.all(epochs: e, fullEpochs: settings.epochs).map { strategy in
                SelectionStrategy(name: strategy.name, kind: .learningCurve, scores: runs.map(strategy.score),
                                  secondsPerArchitecture: runs.reduce(0) { $0 + strategy.cost($1) } / Double(runs.count), epochs: e)
            }
        }
    }

    /// The predictors (`PredictorStrategy`), each scored by its out-of-fold predictions in a
    /// k-fold cross-validation over the references. Cost per architecture: the whole
    /// cross-validation's time / K.
    func predictorStrategies(_ architectures: [DetectorArchitecture], _ runs: [ReferenceRun]) throws -> [SelectionStrategy] {
        let features = try PredictorStrategy.features(architectures, space: DetectorHeadSpace(spanning: architectures))
        let truth = runs.map(\.finalAP)
        let k = architectures.count, folds = min(settings.folds, k)
        // Fold sizes differ by at most one, so every fit has at least k - ceil(k / folds) rows.
        var generator = SplitMix64(seed: settings.seed)
        let order = generator.permutation(k)
        var fold = [Int](repeating: 0, count: k)
        for (position, index) in order.enumerated() { fold[index] = position % folds }
        return PredictorStrategy.models(seed: settings.seed, trainingRows: k - (k + folds - 1) / folds).map { prototype in
            let start = Date()
            var predictions = [Double](repeating: .nan, count: k)
            for f in 0..<folds {
                let train = (0..<k).filter { fold[$0] != f }, test = (0..<k).filter { fold[$0] == f }
                var model = prototype
                // A fold whose fit fails numerically leaves NaN, which the rank table drops.
                guard (try? model.fit(features: train.map { features[$0] }, targets: train.map { truth[$0] })) != nil,
                      let predicted = try? model.predict(test.map { features[$0] }) else { continue }
                for (i, value) in zip(test, predicted) { predictions[i] = value }
            }
            return SelectionStrategy(name: prototype.name, kind: .predictor, scores: predictions,
                                     secondsPerArchitecture: Date().timeIntervalSince(start) / Double(k), epochs: nil)
        }
    }

    func proxyStrategies(_ scores: [[ZeroCostProxyScore]]) -> [SelectionStrategy] {
        ZeroCostProxy.allCases.map { proxy in
            let values = scores.map { list in list.first { $0.proxy == proxy } }
            return SelectionStrategy(name: proxy.rawValue, kind: .proxy, scores: values.map { $0?.score ?? .nan },
                                     secondsPerArchitecture: values.reduce(0) { $0 + ($1?.seconds ?? 0) } / Double(max(1, scores.count)),
                                     epochs: nil)
        }
    }
}
