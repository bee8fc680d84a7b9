import Foundation
import Testing
@testable import Estimation

/// Swift predictors against scikit-learn / xgboost on the same data
/// (fixture from Benchmarks/estimation/crosscheck_sklearn.py).
@Suite("Predictors against scikit-learn and xgboost")
struct PredictorCrosscheckTests {
    let fixture: [String: Any]
    let trainX: [[Double]], trainY: [Double], testX: [[Double]]

    init() throws {
        fixture = try loadFixture("predictor_crosscheck")
        trainX = matrix(fixture["train_x"])
        trainY = doubles(fixture["train_y"])
        testX = matrix(fixture["test_x"])
    }

    func reference(_ key: String, _ field: String = "predictions") -> [Double] {
        doubles((fixture[key] as? [String: Any])?[field])
    }

    func expectClose(_ ours: [Double], _ theirs: [Double], tolerance: Double, _ label: String) {
        #expect(ours.count == theirs.count && !theirs.isEmpty, "\(label): \(ours.count) vs \(theirs.count) predictions")
        let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= tolerance, "\(label): max |difference| \(worst) > \(tolerance)")
    }

    @Test("Bayesian ridge: predictions, predictive std and evidence-maximised precisions")
    func bayesianRidge() throws {
        var model = BayesianRidge()
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference("bayesian_ridge"), tolerance: 1e-8, "predictions")
        expectClose(try model.predictStandardDeviation(testX), reference("bayesian_ridge", "std"), tolerance: 1e-8, "std")
        let info = try #require(fixture["bayesian_ridge"] as? [String: Any])
        #expect(abs(model.alpha / number(info["alpha"])! - 1) < 1e-8)
        #expect(abs(model.lambda / number(info["lambda"])! - 1) < 1e-8)
        #expect(Double(model.iterations) == number(info["n_iter"]))
    }

    @Test("Bayesian ridge on a rank-deficient one-hot design")
    func bayesianRidgeOneHot() throws {
        let x = matrix(fixture["onehot_x"]), y = doubles(fixture["onehot_y"])
        var model = BayesianRidge()
        try model.fit(features: Array(x.prefix(20)), targets: Array(y.prefix(20)))
        expectClose(try model.predict(Array(x.dropFirst(20))), reference("bayesian_ridge_onehot"), tolerance: 1e-8, "one-hot")
        var wide = BayesianRidge()
        try wide.fit(features: Array(x.prefix(8)), targets: Array(y.prefix(8)))
        expectClose(try wide.predict(Array(x.dropFirst(20))), reference("bayesian_ridge_wide"), tolerance: 1e-8, "8 rows x 12 columns")
    }

    @Test("OLS, full rank and rank deficient (minimum-norm solution)")
    func ordinaryLeastSquares() throws {
        var model = OrdinaryLeastSquares()
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference("ols"), tolerance: 1e-9, "full rank")
        let x = matrix(fixture["onehot_x"]), y = doubles(fixture["onehot_y"])
        try model.fit(features: Array(x.prefix(20)), targets: Array(y.prefix(20)))
        expectClose(try model.predict(Array(x.dropFirst(20))), reference("ols_onehot"), tolerance: 1e-8, "one-hot")
        try model.fit(features: Array(x.prefix(8)), targets: Array(y.prefix(8)))
        expectClose(try model.predict(Array(x.dropFirst(20))), reference("ols_wide"), tolerance: 1e-8, "8 rows x 12 columns")
    }

    @Test("GP with fixed hyper-parameters, RBF and Matern 5/2", arguments: [GaussianProcessKernel.rbf, .matern52])
    func gaussianProcess(kernel: GaussianProcessKernel) throws {
        let key = "gp_\(kernel.rawValue)"
        let info = try #require(fixture[key] as? [String: Any])
        var model = GaussianProcessRegressor(
            kernel: kernel,
            initial: .init(lengthScale: number(info["length_scale"])!, signalVariance: number(info["signal_variance"])!,
                           noiseVariance: number(info["noise_variance"])!),
            optimizeHyperparameters: false)
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference(key), tolerance: 1e-8, "\(key) mean")
        expectClose(try model.predictStandardDeviation(testX), reference(key, "std"), tolerance: 1e-8, "\(key) std")
    }

    @Test("GP hyper-parameter optimisation does not lower the marginal likelihood of the start")
    func gaussianProcessOptimisation() throws {
        var fixed = GaussianProcessRegressor(optimizeHyperparameters: false)
        try fixed.fit(features: trainX, targets: trainY)
        var tuned = GaussianProcessRegressor(kernel: .rbf, restarts: 2, seed: 1)
        try tuned.fit(features: trainX, targets: trainY)
        #expect(tuned.logMarginalLikelihood >= fixed.logMarginalLikelihood)
        // The data are a noisy smooth function: the fitted noise must be well below the target variance.
        #expect(try #require(tuned.fitted).noiseVariance < 0.5)
    }

    @Test("k-nearest neighbours")
    func knn() throws {
        var model = KNearestNeighbors(neighbourCount: 5)
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference("knn"), tolerance: 1e-12, "knn")
    }

    @Test("epsilon-SVR with explicit and scale gamma (stopping tolerance 1e-3; agrees to 1e-5 on this fixture)")
    func svr() throws {
        var model = SupportVectorRegressor(c: 2, epsilon: 0.1, gamma: 0.3)
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference("svr"), tolerance: 1e-5, "svr")
        var scaled = SupportVectorRegressor()
        try scaled.fit(features: trainX, targets: trainY)
        expectClose(try scaled.predict(testX), reference("svr_default_gamma"), tolerance: 1e-5, "svr gamma=scale")
    }

    @Test("Boosted trees match xgboost's exact tree method (float32 there, so 1e-5)")
    func boostedTrees() throws {
        let info = try #require(fixture["xgboost"] as? [String: Any])
        var model = GradientBoostedTrees(
            rounds: Int(number(info["rounds"])!), learningRate: number(info["learning_rate"])!,
            maxDepth: Int(number(info["max_depth"])!), lambda: number(info["lambda"])!, gamma: number(info["gamma"])!,
            minChildWeight: number(info["min_child_weight"])!, baseScore: number(info["base_score"])!)
        try model.fit(features: trainX, targets: trainY)
        expectClose(try model.predict(testX), reference("xgboost"), tolerance: 1e-5, "xgboost")
    }

    @Test("Random forest without bootstrap, all features per split: scikit-learn's CART trees",
          arguments: ["random_forest_leaf3", "random_forest_depth4", "random_forest_split12"])
    func randomForest(key: String) throws {
        let info = try #require(fixture[key] as? [String: Any])
        var model = RandomForestRegressor(
            treeCount: Int(number(info["trees"])!), maxFeaturesFraction: 1, maxDepth: number(info["max_depth"]).map { Int($0) },
            minSamplesSplit: Int(number(info["min_samples_split"])!), minSamplesLeaf: Int(number(info["min_samples_leaf"])!),
            bootstrap: false)
        try model.fit(features: trainX, targets: trainY)
        #expect(model.trees.allSatisfy { Double($0.nodeCount) == number(info["node_count"]) })
        expectClose(try model.predict(testX), reference(key), tolerance: 1e-12, key)
    }

    @Test("A bootstrap tree (rows repeated by their draw counts) is scikit-learn's CART with those sample weights")
    func weightedTree() throws {
        let info = try #require(fixture["decision_tree_weighted"] as? [String: Any])
        let counts = doubles(info["counts"]).map { Int($0) }
        let rows = counts.indices.flatMap { i in Array(repeating: i, count: counts[i]) }
        var model = RandomForestRegressor(treeCount: 1, minSamplesLeaf: Int(number(info["min_samples_leaf"])!), bootstrap: false)
        try model.fit(features: rows.map { trainX[$0] }, targets: rows.map { trainY[$0] })
        #expect(Double(model.trees[0].nodeCount) == number(info["node_count"]))
        expectClose(try model.predict(testX), reference("decision_tree_weighted"), tolerance: 1e-12, "weighted tree")
    }

    /// Measured: 4e-15 after up to 2,500 Adam steps (summation order only). 1e-10 still catches a
    /// change as small as Adam's epsilon 1e-8 -> 1.1e-8, which moves these predictions by 5e-8 to 7e-7.
    @Test("MLP: the same seeded initialisation, batch order and Adam steps as PyTorch (float64)")
    func multilayerPerceptron() throws {
        let torchFixture = try loadFixture("mlp_crosscheck")
        let x = matrix(torchFixture["train_x"]), y = doubles(torchFixture["train_y"]), test = matrix(torchFixture["test_x"])
        let cases = try #require(torchFixture["cases"] as? [[String: Any]])
        #expect(cases.count == 3)
        for info in cases {
            var model = MultilayerPerceptron(
                hiddenLayers: doubles(info["hidden"]).map { Int($0) }, epochs: Int(number(info["epochs"])!),
                batchSize: Int(number(info["batch_size"])!), learningRate: number(info["learning_rate"])!,
                weightDecay: number(info["weight_decay"])!, seed: UInt64(number(info["seed"])!))
            try model.fit(features: x, targets: y)
            expectClose(try model.predict(test), doubles(info["predictions"]), tolerance: 1e-10, "mlp \(model.hiddenLayers)")
        }
    }
}
