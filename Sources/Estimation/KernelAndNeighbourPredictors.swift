// k-nearest neighbours, epsilon-support vector regression and a small multilayer perceptron.
import Foundation
import Randomness

/// k-nearest-neighbour regression: mean target of the k closest training rows (Euclidean);
/// equal distances are broken by training order, so results are deterministic.
public struct KNearestNeighbors: PerformancePredictor, Codable, Hashable {
    public var name: String { "knn" }
    public var neighbourCount: Int
    private var rows: [[Double]] = []
    private var targets: [Double] = []

    public init(neighbourCount: Int = 5) {
        self.neighbourCount = neighbourCount
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        _ = try PredictorInput.checkTraining(name, features, targets)
        guard neighbourCount >= 1 && neighbourCount <= features.count else {
            throw PredictorError.invalidHyperparameter(model: name, name: "neighbourCount", value: Double(neighbourCount), expected: "in 1...\(features.count) (training rows)")
        }
        rows = features
        self.targets = targets
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard !rows.isEmpty else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: rows[0].count)
        return features.map { query in
            let distances = rows.map { row in zip(row, query).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
            let nearest = distances.indices.sorted { distances[$0] != distances[$1] ? distances[$0] < distances[$1] : $0 < $1 }
            return nearest.prefix(neighbourCount).reduce(0) { $0 + targets[$1] } / Double(neighbourCount)
        }
    }
}

/// Epsilon-SVR with an RBF kernel exp(-gamma |x - x'|^2), solved by SMO with LIBSVM's
/// second-order working-set selection (Fan, Chen & Lin 2005) on the 2n-variable dual, stopping when
/// the maximal KKT violation drops below `tolerance` (LIBSVM/scikit-learn default 1e-3).
public struct SupportVectorRegressor: PerformancePredictor, Codable, Hashable {
    public var name: String { "svr" }
    public var c: Double
    public var epsilon: Double
    /// nil = scikit-learn's gamma="scale": 1 / (features x variance of all feature values).
    public var gamma: Double?
    public var tolerance: Double
    public var maxIterations: Int
    private var rows: [[Double]] = []
    private var dualCoefficients: [Double] = []
    public private(set) var bias = 0.0
    public private(set) var fittedGamma = 0.0

    public init(c: Double = 1, epsilon: Double = 0.1, gamma: Double? = nil, tolerance: Double = 1e-3, maxIterations: Int = 10_000_000) {
        self.c = c
        self.epsilon = epsilon
        self.gamma = gamma
        self.tolerance = tolerance
        self.maxIterations = maxIterations
    }

    private func kernel(_ a: [Double], _ b: [Double]) -> Double {
        exp(-fittedGamma * zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) })
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        let width = try PredictorInput.checkTraining(name, features, targets)
        try PredictorInput.positive(name, "c", c)
        try PredictorInput.nonNegative(name, "epsilon", epsilon)
        try PredictorInput.positive(name, "tolerance", tolerance)
        if let gamma { try PredictorInput.positive(name, "gamma", gamma); fittedGamma = gamma } else {
            let all = features.flatMap { $0 }
            let m = mean(all)
            let variance = all.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(all.count)
            fittedGamma = variance > 0 ? 1 / (Double(width) * variance) : 1
        }
        rows = features
        let n = features.count, size = 2 * n
        var k = Matrix(rows: n, columns: n)
        for i in 0..<n { for j in i..<n { let v = kernel(features[i], features[j]); k[i, j] = v; k[j, i] = v } }
        // Variables t < n are alpha_t (sign +1), t >= n are alpha*_t (sign -1); Q_st = y_s y_t K.
        let sign = (0..<size).map { $0 < n ? 1.0 : -1.0 }
        var alpha = [Double](repeating: 0, count: size)
        var gradient = (0..<size).map { $0 < n ? epsilon - targets[$0] : epsilon + targets[$0 - n] }
        let tau = 1e-12
        func q(_ s: Int, _ t: Int) -> Double { sign[s] * sign[t] * k[s % n, t % n] }
        var iteration = 0
        while iteration < maxIterations {
            iteration += 1
            var gMax = -Double.infinity, gMax2 = -Double.infinity
            var i = -1, j = -1
            for t in 0..<size {
                if sign[t] > 0 ? alpha[t] < c : alpha[t] > 0, -sign[t] * gradient[t] >= gMax {
                    gMax = -sign[t] * gradient[t]; i = t
                }
            }
            guard i >= 0 else { break }
            var bestObjective = Double.infinity
            for t in 0..<size where sign[t] > 0 ? alpha[t] > 0 : alpha[t] < c {
                let violation = sign[t] * gradient[t]
                gMax2 = max(gMax2, violation)
                let b = gMax + violation
                if b > 0 {
                    let a = k[i % n, i % n] + k[t % n, t % n] - 2 * k[i % n, t % n]
                    let objective = -(b * b) / (a > 0 ? a : tau)
                    if objective <= bestObjective { bestObjective = objective; j = t }
                }
            }
            if gMax + gMax2 < tolerance || j < 0 { break }
            let oldI = alpha[i], oldJ = alpha[j]
            if sign[i] != sign[j] {
                var quad = q(i, i) + q(j, j) + 2 * q(i, j)
                if quad <= 0 { quad = tau }
                let delta = (-gradient[i] - gradient[j]) / quad
                let diff = alpha[i] - alpha[j]
                alpha[i] += delta; alpha[j] += delta
                if diff > 0 { if alpha[j] < 0 { alpha[j] = 0; alpha[i] = diff } } else if alpha[i] < 0 { alpha[i] = 0; alpha[j] = -diff }
                if diff > 0 { if alpha[i] > c { alpha[i] = c; alpha[j] = c - diff } } else if alpha[j] > c { alpha[j] = c; alpha[i] = c + diff }
            } else {
                var quad = q(i, i) + q(j, j) - 2 * q(i, j)
                if quad <= 0 { quad = tau }
                let delta = (gradient[i] - gradient[j]) / quad
                let sum = alpha[i] + alpha[j]
                alpha[i] -= delta; alpha[j] += delta
                if sum > c { if alpha[i] > c { alpha[i] = c; alpha[j] = sum - c } } else if alpha[j] < 0 { alpha[j] = 0; alpha[i] = sum }
                if sum > c { if alpha[j] > c { alpha[j] = c; alpha[i] = sum - c } } else if alpha[i] < 0 { alpha[i] = 0; alpha[j] = sum }
            }
            let di = alpha[i] - oldI, dj = alpha[j] - oldJ
            for t in 0..<size { gradient[t] += q(i, t) * di + q(j, t) * dj }
        }
        // Bias: mean of y_t G_t over free variables, else the midpoint of the feasible interval.
        var upper = Double.infinity, lower = -Double.infinity, freeSum = 0.0, freeCount = 0
        for t in 0..<size {
            let yg = sign[t] * gradient[t]
            let atUpper = alpha[t] >= c, atLower = alpha[t] <= 0
            if atUpper { if sign[t] < 0 { upper = min(upper, yg) } else { lower = max(lower, yg) } }
            else if atLower { if sign[t] > 0 { upper = min(upper, yg) } else { lower = max(lower, yg) } }
            else { freeCount += 1; freeSum += yg }
        }
        let rho = freeCount > 0 ? freeSum / Double(freeCount) : (upper + lower) / 2
        bias = -rho
        dualCoefficients = (0..<n).map { alpha[$0] - alpha[$0 + n] }
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard !rows.isEmpty else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: rows[0].count)
        return features.map { x in
            var s = bias
            for (i, row) in rows.enumerated() where dualCoefficients[i] != 0 { s += dualCoefficients[i] * kernel(row, x) }
            return s
        }
    }
}

/// Multilayer perceptron regressor: 1-2 ReLU hidden layers, squared error on standardised inputs
/// and targets, He-initialised weights and Adam (Kingma & Ba 2015) on seeded mini-batches, with
/// L2 weight decay. Small by design: trained in pure Swift on a few hundred rows.
public struct MultilayerPerceptron: PerformancePredictor, Codable, Hashable {
    public var name: String { "mlp" }
    public var hiddenLayers: [Int]
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var weightDecay: Double
    public var seed: UInt64
    private var weights: [[Double]] = []   // layer l: out x in, row-major
    private var biases: [[Double]] = []
    private var inputScaler: Standardizer?
    private var targetMean = 0.0, targetScale = 1.0

    public init(hiddenLayers: [Int] = [32, 32], epochs: Int = 300, batchSize: Int = 16,
                learningRate: Double = 1e-3, weightDecay: Double = 1e-4, seed: UInt64 = 0) {
        self.hiddenLayers = hiddenLayers
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.seed = seed
    }

    /// Activations of every layer for one input (index 0 = input, last = scalar output).
    private func forward(_ x: [Double]) -> [[Double]] {
        var activations = [x]
        for l in weights.indices {
            let input = activations[l]
            let outSize = biases[l].count, inSize = input.count
            var out = biases[l]
            for o in 0..<outSize {
                var s = 0.0
                for i in 0..<inSize { s += weights[l][o * inSize + i] * input[i] }
                out[o] += s
                if l < weights.count - 1 { out[o] = max(0, out[o]) }
            }
            activations.append(out)
        }
        return activations
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        let width = try PredictorInput.checkTraining(name, features, targets)
        guard (1...2).contains(hiddenLayers.count), hiddenLayers.allSatisfy({ $0 >= 1 }) else {
            throw PredictorError.invalidHyperparameter(model: name, name: "hiddenLayers.count", value: Double(hiddenLayers.count), expected: "1 or 2 layers of >= 1 units")
        }
        guard epochs >= 1, batchSize >= 1 else {
            throw PredictorError.invalidHyperparameter(model: name, name: "epochs/batchSize", value: Double(min(epochs, batchSize)), expected: ">= 1")
        }
        try PredictorInput.positive(name, "learningRate", learningRate)
        try PredictorInput.nonNegative(name, "weightDecay", weightDecay)
        let scaler = Standardizer(features)
        inputScaler = scaler
        let x = features.map(scaler.apply)
        targetMean = mean(targets)
        let sd = (targets.reduce(0) { $0 + ($1 - targetMean) * ($1 - targetMean) } / Double(targets.count)).squareRoot()
        targetScale = sd > 0 ? sd : 1
        let y = targets.map { ($0 - targetMean) / targetScale }
        var rng = SplitMix64(seed: seed)
        let sizes = [width] + hiddenLayers + [1]
        weights = []; biases = []
        for l in 0..<(sizes.count - 1) {
            let scale = (2.0 / Double(max(sizes[l], 1))).squareRoot()
            weights.append((0..<(sizes[l] * sizes[l + 1])).map { _ in rng.nextGaussian() * scale })
            biases.append([Double](repeating: 0, count: sizes[l + 1]))
        }
        var mW = weights.map { $0.map { _ in 0.0 } }, vW = mW
        var mB = biases.map { $0.map { _ in 0.0 } }, vB = mB
        let beta1 = 0.9, beta2 = 0.999, adamEpsilon = 1e-8
        var step = 0
        for _ in 0..<epochs {
            let order = rng.permutation(x.count)
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = order[start..<min(start + batchSize, order.count)]
                var gW = weights.map { $0.map { _ in 0.0 } }, gB = biases.map { $0.map { _ in 0.0 } }
                for r in batch {
                    let acts = forward(x[r])
                    // d(mean squared error / 2)/d output.
                    var delta = [(acts.last![0] - y[r]) / Double(batch.count)]
                    for l in stride(from: weights.count - 1, through: 0, by: -1) {
                        let input = acts[l], inSize = input.count
                        for o in delta.indices {
                            gB[l][o] += delta[o]
                            for i in 0..<inSize { gW[l][o * inSize + i] += delta[o] * input[i] }
                        }
                        if l > 0 {
                            var previous = [Double](repeating: 0, count: inSize)
                            for i in 0..<inSize where input[i] > 0 {
                                var s = 0.0
                                for o in delta.indices { s += weights[l][o * inSize + i] * delta[o] }
                                previous[i] = s
                            }
                            delta = previous
                        }
                    }
                }
                step += 1
                let correction1 = 1 - pow(beta1, Double(step)), correction2 = 1 - pow(beta2, Double(step))
                for l in weights.indices {
                    for k in weights[l].indices {
                        let g = gW[l][k] + weightDecay * weights[l][k]
                        mW[l][k] = beta1 * mW[l][k] + (1 - beta1) * g
                        vW[l][k] = beta2 * vW[l][k] + (1 - beta2) * g * g
                        weights[l][k] -= learningRate * (mW[l][k] / correction1) / ((vW[l][k] / correction2).squareRoot() + adamEpsilon)
                    }
                    for k in biases[l].indices {
                        let g = gB[l][k]
                        mB[l][k] = beta1 * mB[l][k] + (1 - beta1) * g
                        vB[l][k] = beta2 * vB[l][k] + (1 - beta2) * g * g
                        biases[l][k] -= learningRate * (mB[l][k] / correction1) / ((vB[l][k] / correction2).squareRoot() + adamEpsilon)
                    }
                }
            }
        }
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard let scaler = inputScaler else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: scaler.means.count)
        return features.map { forward(scaler.apply($0)).last![0] * targetScale + targetMean }
    }
}
