// Tree ensembles: random forest (CART, variance reduction) and second-order gradient-boosted trees
// in the style of XGBoost's exact greedy algorithm.
import Foundation
import Randomness

/// A binary regression tree stored as flat arrays; rows go left when x[feature] < threshold.
public struct RegressionTree: Codable, Sendable, Hashable {
    /// -1 marks a leaf.
    var feature: [Int] = []
    var threshold: [Double] = []
    var left: [Int] = []
    var right: [Int] = []
    var value: [Double] = []
    /// Split gain, kept for XGBoost-style pruning.
    var gain: [Double] = []

    mutating func addLeaf(_ v: Double) -> Int {
        feature.append(-1); threshold.append(0); left.append(-1); right.append(-1); value.append(v); gain.append(0)
        return value.count - 1
    }

    public func predict(_ row: [Double]) -> Double {
        var node = 0
        while feature[node] >= 0 {
            node = row[feature[node]] < threshold[node] ? left[node] : right[node]
        }
        return value[node]
    }

    public var nodeCount: Int { value.count }
}

/// Best split of one node: scans every feature's sorted distinct values; thresholds are midpoints
/// between consecutive distinct values. `score(leftStats, rightStats)` is the gain to maximise.
private func bestSplit(
    rows: [[Double]], indices: [Int], features: [Int], gradients: [Double], hessians: [Double],
    admissible: (_ leftCount: Int, _ leftHessian: Double, _ rightCount: Int, _ rightHessian: Double) -> Bool,
    score: (_ gl: Double, _ hl: Double, _ gr: Double, _ hr: Double) -> Double
) -> (feature: Int, threshold: Double, gain: Double)? {
    let totalG = indices.reduce(0) { $0 + gradients[$1] }
    let totalH = indices.reduce(0) { $0 + hessians[$1] }
    var best: (feature: Int, threshold: Double, gain: Double)?
    for f in features {
        let sorted = indices.sorted { rows[$0][f] < rows[$1][f] }
        var gl = 0.0, hl = 0.0
        for k in 0..<(sorted.count - 1) {
            let i = sorted[k]
            gl += gradients[i]; hl += hessians[i]
            let here = rows[i][f], next = rows[sorted[k + 1]][f]
            if here == next { continue }
            let leftCount = k + 1, rightCount = sorted.count - leftCount
            guard admissible(leftCount, hl, rightCount, totalH - hl) else { continue }
            let g = score(gl, hl, totalG - gl, totalH - hl)
            if best == nil || g > best!.gain {
                best = (f, (here + next) / 2, g)
            }
        }
    }
    return best
}

/// Random forest regression (Breiman 2001): each tree is a CART tree grown on a bootstrap sample,
/// choosing among `maxFeatures` randomly drawn features at each split; the prediction is the mean.
public struct RandomForestRegressor: PerformancePredictor, Codable, Hashable {
    public var name: String { "random_forest" }
    public var treeCount: Int
    /// Fraction of the features tried at each split, in (0, 1]; 1 = all (scikit-learn's regressor default).
    public var maxFeaturesFraction: Double
    public var maxDepth: Int?
    public var minSamplesSplit: Int
    public var minSamplesLeaf: Int
    public var bootstrap: Bool
    public var seed: UInt64
    public private(set) var trees: [RegressionTree] = []
    private var width = 0

    public init(treeCount: Int = 100, maxFeaturesFraction: Double = 1, maxDepth: Int? = nil,
                minSamplesSplit: Int = 2, minSamplesLeaf: Int = 1, bootstrap: Bool = true, seed: UInt64 = 0) {
        self.treeCount = treeCount
        self.maxFeaturesFraction = maxFeaturesFraction
        self.maxDepth = maxDepth
        self.minSamplesSplit = minSamplesSplit
        self.minSamplesLeaf = minSamplesLeaf
        self.bootstrap = bootstrap
        self.seed = seed
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        width = try PredictorInput.checkTraining(name, features, targets)
        guard treeCount >= 1 else { throw PredictorError.invalidHyperparameter(model: name, name: "treeCount", value: Double(treeCount), expected: ">= 1") }
        guard maxFeaturesFraction > 0 && maxFeaturesFraction <= 1 else {
            throw PredictorError.invalidHyperparameter(model: name, name: "maxFeaturesFraction", value: maxFeaturesFraction, expected: "in (0, 1]")
        }
        guard minSamplesLeaf >= 1, minSamplesSplit >= 2 else {
            throw PredictorError.invalidHyperparameter(model: name, name: "minSamplesLeaf/minSamplesSplit", value: Double(min(minSamplesLeaf, minSamplesSplit)), expected: "leaf >= 1 and split >= 2")
        }
        var rng = SplitMix64(seed: seed)
        let n = features.count
        let tried = max(1, Int((maxFeaturesFraction * Double(width)).rounded(.down)))
        // Squared error: gradient = -y, hessian = 1 gives CART's variance reduction via G^2/H.
        let gradients = targets.map { -$0 }
        let hessians = [Double](repeating: 1, count: n)
        trees = []
        for _ in 0..<treeCount {
            let sample = bootstrap ? (0..<n).map { _ in rng.nextIndex(below: n) } : Array(0..<n)
            var tree = RegressionTree()
            grow(&tree, features, sample, gradients, hessians, depth: 0, tried: tried, &rng)
            trees.append(tree)
        }
    }

    @discardableResult
    private func grow(_ tree: inout RegressionTree, _ rows: [[Double]], _ indices: [Int], _ g: [Double], _ h: [Double],
                      depth: Int, tried: Int, _ rng: inout SplitMix64) -> Int {
        let leafValue = -indices.reduce(0) { $0 + g[$1] } / Double(indices.count)
        let node = tree.addLeaf(leafValue)
        if indices.count < minSamplesSplit || (maxDepth.map { depth >= $0 } ?? false) { return node }
        let candidates = Array(rng.permutation(width).prefix(tried))
        let total = indices.reduce(0) { $0 + g[$1] }
        let parentScore = total * total / Double(indices.count)
        let minLeaf = minSamplesLeaf
        guard let split = bestSplit(
            rows: rows, indices: indices, features: candidates, gradients: g, hessians: h,
            admissible: { lc, _, rc, _ in lc >= minLeaf && rc >= minLeaf },
            score: { gl, hl, gr, hr in gl * gl / hl + gr * gr / hr - parentScore }),
            split.gain > 1e-12 * max(1, abs(parentScore)) else { return node }
        let goesLeft = indices.filter { rows[$0][split.feature] < split.threshold }
        let goesRight = indices.filter { rows[$0][split.feature] >= split.threshold }
        tree.feature[node] = split.feature
        tree.threshold[node] = split.threshold
        tree.gain[node] = split.gain
        let l = grow(&tree, rows, goesLeft, g, h, depth: depth + 1, tried: tried, &rng)
        let r = grow(&tree, rows, goesRight, g, h, depth: depth + 1, tried: tried, &rng)
        tree.left[node] = l
        tree.right[node] = r
        return node
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard !trees.isEmpty else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: width)
        return features.map { row in trees.reduce(0) { $0 + $1.predict(row) } / Double(trees.count) }
    }
}

/// Gradient-boosted regression trees with second-order (Newton) boosting, following XGBoost's exact
/// greedy algorithm (Chen & Guestrin 2016) for squared error (gradient = prediction - y, hessian = 1):
/// split gain = G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda), children need hessian sum
/// >= minChildWeight, a grown tree is pruned bottom-up where the gain is below gamma, and leaf
/// weight = -learningRate * G/(H+lambda). Rows are subsampled per tree (each kept with probability
/// `subsample`) and columns per tree (`columnSampleByTree`), seeded.
public struct GradientBoostedTrees: PerformancePredictor, Codable, Hashable {
    public var name: String { "gbdt" }
    public var rounds: Int
    public var learningRate: Double
    public var maxDepth: Int
    public var lambda: Double
    public var gamma: Double
    public var minChildWeight: Double
    public var subsample: Double
    public var columnSampleByTree: Double
    /// Initial prediction; nil uses the mean target (what XGBoost estimates for squared error).
    public var baseScore: Double?
    public var seed: UInt64
    public private(set) var trees: [RegressionTree] = []
    public private(set) var fittedBaseScore = 0.0
    private var width = 0

    public init(rounds: Int = 100, learningRate: Double = 0.3, maxDepth: Int = 6, lambda: Double = 1, gamma: Double = 0,
                minChildWeight: Double = 1, subsample: Double = 1, columnSampleByTree: Double = 1,
                baseScore: Double? = nil, seed: UInt64 = 0) {
        self.rounds = rounds
        self.learningRate = learningRate
        self.maxDepth = maxDepth
        self.lambda = lambda
        self.gamma = gamma
        self.minChildWeight = minChildWeight
        self.subsample = subsample
        self.columnSampleByTree = columnSampleByTree
        self.baseScore = baseScore
        self.seed = seed
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        width = try PredictorInput.checkTraining(name, features, targets)
        guard rounds >= 1 else { throw PredictorError.invalidHyperparameter(model: name, name: "rounds", value: Double(rounds), expected: ">= 1") }
        try PredictorInput.positive(name, "learningRate", learningRate)
        try PredictorInput.nonNegative(name, "lambda", lambda)
        try PredictorInput.nonNegative(name, "gamma", gamma)
        try PredictorInput.nonNegative(name, "minChildWeight", minChildWeight)
        for (label, v) in [("subsample", subsample), ("columnSampleByTree", columnSampleByTree)] where !(v > 0 && v <= 1) {
            throw PredictorError.invalidHyperparameter(model: name, name: label, value: v, expected: "in (0, 1]")
        }
        let n = features.count
        fittedBaseScore = baseScore ?? mean(targets)
        var predictions = [Double](repeating: fittedBaseScore, count: n)
        var rng = SplitMix64(seed: seed)
        let hessians = [Double](repeating: 1, count: n)
        trees = []
        for _ in 0..<rounds {
            let gradients = (0..<n).map { predictions[$0] - targets[$0] }
            var rows = Array(0..<n)
            if subsample < 1 { rows = rows.filter { _ in rng.nextUnit() < subsample } }
            let columnCount = max(1, Int((columnSampleByTree * Double(width)).rounded(.down)))
            let columns = columnCount == width ? Array(0..<width) : Array(rng.permutation(width).prefix(columnCount)).sorted()
            var tree = RegressionTree()
            if !rows.isEmpty {
                grow(&tree, features, rows, gradients, hessians, columns, depth: 0)
                prune(&tree, 0)
            } else {
                _ = tree.addLeaf(0)
            }
            for i in 0..<n { predictions[i] += tree.predict(features[i]) }
            trees.append(tree)
        }
    }

    @discardableResult
    private func grow(_ tree: inout RegressionTree, _ rows: [[Double]], _ indices: [Int], _ g: [Double], _ h: [Double],
                      _ columns: [Int], depth: Int) -> Int {
        let sumG = indices.reduce(0) { $0 + g[$1] }, sumH = indices.reduce(0) { $0 + h[$1] }
        let node = tree.addLeaf(-learningRate * sumG / (sumH + lambda))
        if depth >= maxDepth || indices.count < 2 { return node }
        let parent = sumG * sumG / (sumH + lambda)
        let lam = lambda, mcw = minChildWeight
        guard let split = bestSplit(
            rows: rows, indices: indices, features: columns, gradients: g, hessians: h,
            admissible: { _, hl, _, hr in hl >= mcw && hr >= mcw },
            score: { gl, hl, gr, hr in gl * gl / (hl + lam) + gr * gr / (hr + lam) - parent }),
            split.gain > 1e-6 else { return node }
        tree.feature[node] = split.feature
        tree.threshold[node] = split.threshold
        tree.gain[node] = split.gain
        let l = grow(&tree, rows, indices.filter { rows[$0][split.feature] < split.threshold }, g, h, columns, depth: depth + 1)
        let r = grow(&tree, rows, indices.filter { rows[$0][split.feature] >= split.threshold }, g, h, columns, depth: depth + 1)
        tree.left[node] = l
        tree.right[node] = r
        return node
    }

    /// Post-order pruning: a split whose children are both leaves and whose gain is below gamma
    /// becomes a leaf (its own leaf value was stored when it was grown).
    private func prune(_ tree: inout RegressionTree, _ node: Int) {
        guard tree.feature[node] >= 0 else { return }
        prune(&tree, tree.left[node])
        prune(&tree, tree.right[node])
        if tree.feature[tree.left[node]] < 0 && tree.feature[tree.right[node]] < 0 && tree.gain[node] < gamma {
            tree.feature[node] = -1
        }
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard !trees.isEmpty else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: width)
        return features.map { row in trees.reduce(fittedBaseScore) { $0 + $1.predict(row) } }
    }
}
