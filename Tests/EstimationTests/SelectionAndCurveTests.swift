@testable import Estimation
import Foundation
import Randomness
import Testing

@Suite("Strategy selection, budget planning and learning curves")
struct SelectionAndCurveTests {
    let truth: [Double] = (0..<30).map { Double($0) }

    @Test("Rank table sorts by tau, breaks ties by cost, and the budget picks the best affordable")
    func rankTable() throws {
        var rng = SplitMix64(seed: 9)
        let noisy = truth.map { $0 + 8 * rng.nextGaussian() }
        let table = try StrategyRankTable(trueScores: truth, strategies: [
            .init(name: "noisy_proxy", scores: noisy, secondsPerArchitecture: 1),
            .init(name: "full_training", scores: truth, secondsPerArchitecture: 3600),
            .init(name: "perfect_but_cheap", scores: truth.map { 2 * $0 }, secondsPerArchitecture: 60),
            .init(name: "reversed", scores: truth.map { -$0 }, secondsPerArchitecture: 0.5),
        ], resamples: 200, seed: 1)
        #expect(table.rows.map(\.name) == ["perfect_but_cheap", "full_training", "noisy_proxy", "reversed"])
        #expect(abs(table.rows[0].kendallTau - 1) < 1e-12)
        #expect(abs(table.rows[3].kendallTau + 1) < 1e-12)
        let noisyRow = table.rows[2]
        #expect(noisyRow.kendallTauInterval.lower <= noisyRow.kendallTau && noisyRow.kendallTau <= noisyRow.kendallTauInterval.upper)
        #expect(table.bestAffordable(maxSecondsPerArchitecture: 100)?.name == "perfect_but_cheap")
        #expect(table.bestAffordable(maxSecondsPerArchitecture: 10)?.name == "noisy_proxy")
        #expect(table.bestAffordable(maxSecondsPerArchitecture: 0.1) == nil)
        #expect(table.csv.split(separator: "\n").count == 5)
        let decoded = try JSONDecoder().decode(StrategyRankTable.self, from: table.json())
        #expect(decoded.rows.map(\.name) == table.rows.map(\.name))
    }

    @Test("Rank table rejects misaligned scores and drops failed (non-finite) evaluations")
    func rankTableInput() throws {
        #expect(throws: StrategySelectionError.scoreCountMismatch(strategy: "x", scores: 2, architectures: 30)) {
            try StrategyRankTable(trueScores: truth, strategies: [.init(name: "x", scores: [1, 2], secondsPerArchitecture: 1)])
        }
        var scores = truth
        scores[4] = -.infinity
        let table = try StrategyRankTable(trueScores: truth, strategies: [.init(name: "x", scores: scores, secondsPerArchitecture: 1)], resamples: 50)
        #expect(table.rows[0].architectures == 29)
        #expect(abs(table.rows[0].kendallTau - 1) < 1e-12)
    }

    @Test("Budget plan arithmetic")
    func budgetPlan() throws {
        // One full training = 1 h, 100 trials, front of 5, selection = 10 full trainings.
        let plan = try BudgetPlan(fullTrainingSeconds: 3600, trials: 100, frontSize: 5, selectionSeconds: 36_000, strategies: [
            .init(name: "full", secondsPerTrial: 3600, retrainsFront: false),
            .init(name: "short_10pct", secondsPerTrial: 360),
        ])
        #expect(plan.baselineSeconds == 360_000)
        let full = plan.rows[0], short = plan.rows[1]
        #expect(full.searchSpeedup == 1 && full.retrainingSeconds == 0 && full.totalSeconds == 396_000)
        #expect(short.searchSeconds == 36_000 && short.searchSpeedup == 10)
        #expect(short.retrainingSeconds == 18_000 && short.totalSeconds == 90_000)
        #expect(short.overallSpeedup == 4)
        #expect(plan.csv.hasPrefix("strategy,trials,search_seconds"))
        #expect(throws: BudgetPlanError.invalidValue(field: "frontSize", value: 200, expected: "in 0...100")) {
            try BudgetPlan(fullTrainingSeconds: 1, trials: 100, frontSize: 200, selectionSeconds: 0, strategies: [])
        }
    }

    @Test("SoTL and SoTL-E")
    func sumOfTrainingLosses() throws {
        let curve = LearningCurve(trainingLosses: [3, 2, 1.5, 1.25])
        #expect(try SumOfTrainingLosses().score(curve) == -7.75)
        #expect(try SumOfTrainingLosses(lastEpochs: 2).score(curve) == -2.75)
        #expect(throws: LearningCurveError.tooShort(series: "trainingLosses", count: 4, required: 5)) {
            try SumOfTrainingLosses(lastEpochs: 5).score(curve)
        }
    }

    @Test("Curve extrapolation recovers the asymptote of noiseless curves", arguments: SaturatingCurveModel.allCases)
    func extrapolation(model: SaturatingCurveModel) throws {
        let truthParameters = model == .powerLaw ? [0.62, 0.5, 0.8] : [0.62, 0.5, 0.15]
        let observed = (1...20).map { model.value(truthParameters, Double($0)) }
        let estimator = CurveExtrapolation(model: model, targetEpoch: 100)
        let predicted = try estimator.score(LearningCurve(validationMetric: observed))
        #expect(abs(predicted - model.value(truthParameters, 100)) < 1e-4, "\(model): predicted \(predicted)")
        #expect(predicted > observed.last!)
    }
}

@Suite("Encoding and stochastic predictors")
struct EncodingAndModelTests {
    @Test("One-hot, ordinal and numeric columns")
    func encoding() throws {
        let encoding = try ArchitectureEncoding(parameters: [
            .categorical(name: "op", choices: [.string("conv"), .string("pool"), .string("skip")]),
            .ordinal(name: "width", levels: [.integer(16), .integer(32), .integer(64)]),
            .numeric(name: "lr", lower: 1e-4, upper: 1e-2, logScale: true),
        ])
        #expect(encoding.columnNames == ["op=conv", "op=pool", "op=skip", "width", "lr"])
        let row = try encoding.encode(["op": .string("pool"), "width": .integer(64), "lr": .number(1e-3)])
        #expect(row[0...3] == [0, 1, 0, 1])
        #expect(abs(row[4] - 0.5) < 1e-12)
        #expect(throws: ArchitectureEncodingError.unknownChoice(parameter: "op", value: "fc", expected: ["conv", "pool", "skip"])) {
            try encoding.encode(["op": .string("fc"), "width": .integer(16), "lr": .number(1e-3)])
        }
        #expect(throws: ArchitectureEncodingError.missingParameter(name: "lr")) {
            try encoding.encode(["op": .string("conv"), "width": .integer(16)])
        }
        let matrix = try encoding.featureMatrix([["op": .string("skip"), "width": .integer(16), "lr": .number(1e-2)]], extraFeatures: [[42]])
        #expect(matrix == [[0, 0, 1, 0, 1, 42]])
    }

    /// y = x0^2 + step(x1) on [-1, 1]^3: non-linear, so trees and the MLP should beat a constant.
    func data(_ n: Int, seed: UInt64) -> ([[Double]], [Double]) {
        var rng = SplitMix64(seed: seed)
        let x = (0..<n).map { _ in (0..<3).map { _ in 2 * rng.nextUnit() - 1 } }
        return (x, x.map { $0[0] * $0[0] + ($0[1] > 0 ? 1 : 0) })
    }

    @Test("Random forest, boosted trees with sampling and MLP are seeded and rank held-out data well")
    func stochasticModels() throws {
        let (x, y) = data(80, seed: 1), (tx, ty) = data(200, seed: 2)
        let models: [any PerformancePredictor] = [
            RandomForestRegressor(treeCount: 50, maxFeaturesFraction: 0.67, seed: 4),
            GradientBoostedTrees(rounds: 100, learningRate: 0.1, maxDepth: 3, subsample: 0.8, columnSampleByTree: 0.67, seed: 4),
            MultilayerPerceptron(hiddenLayers: [16], epochs: 200, batchSize: 16, learningRate: 0.01, seed: 4),
            GaussianProcessRegressor(kernel: .matern52, seed: 4),
        ]
        for model in models {
            var a = model, b = model
            try a.fit(features: x, targets: y)
            try b.fit(features: x, targets: y)
            let pa = try a.predict(tx), pb = try b.predict(tx)
            #expect(pa == pb, "\(model.name) is not deterministic for a fixed seed")
            let tau = try RankStatistics.kendallTau(pa, ty)
            #expect(tau > 0.6, "\(model.name): held-out tau \(tau)")
        }
    }

    @Test("Predictors report misuse with typed errors")
    func errors() {
        #expect(throws: PredictorError.notFitted(model: "gbdt")) { try GradientBoostedTrees().predict([[1]]) }
        var ols = OrdinaryLeastSquares()
        #expect(throws: PredictorError.targetCountMismatch(model: "ols", rows: 2, targets: 1)) { try ols.fit(features: [[1], [2]], targets: [1]) }
        var knn = KNearestNeighbors(neighbourCount: 5)
        #expect(throws: PredictorError.featureCountMismatch(model: "knn", row: 1, expected: 2, found: 1)) {
            try knn.fit(features: [[1, 2], [3]], targets: [1, 2])
        }
    }
}
