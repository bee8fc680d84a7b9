// Linear predictors: ordinary least squares and Bayesian ridge regression.
import Foundation
import LinearAlgebra

/// Ordinary least squares with an intercept.
///
/// Rank-deficient designs (one-hot encodings always are, since each choice's columns sum to one)
/// get the minimum-norm solution through a pseudo-inverse: eigen-directions of X^T X whose
/// eigenvalue is below `relativeCutoff` x the largest are dropped, as scikit-learn's
/// LinearRegression (LAPACK gelsd) does with its singular values. Predictions are then unique on
/// the span of the training data.
public struct OrdinaryLeastSquares: PerformancePredictor, Codable, Hashable {
    public var name: String { "ols" }
    /// Relative eigenvalue cutoff of the pseudo-inverse (on squared singular values).
    public var relativeCutoff: Double
    public private(set) var coefficients: [Double] = []
    public private(set) var intercept: Double = 0
    private var isFitted = false

    public init(relativeCutoff: Double = 1e-12) {
        self.relativeCutoff = relativeCutoff
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        let width = try PredictorInput.checkTraining(name, features, targets)
        try PredictorInput.positive(name, "relativeCutoff", relativeCutoff)
        let centered = CenteredDesign(features, targets)
        let eigen = SymmetricEigen(centered.x.gram)
        let cutoff = (eigen.values.max() ?? 0) * relativeCutoff
        let xty = centered.x.transposeTimes(centered.y)
        coefficients = width == 0 ? [] : eigen.apply(xty) { $0 > cutoff ? 1 / $0 : 0 }
        intercept = centered.interceptFor(coefficients)
        isFitted = true
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard isFitted else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: coefficients.count)
        return features.map { row in zip(row, coefficients).reduce(intercept) { $0 + $1.0 * $1.1 } }
    }
}

/// Features and targets with their column means removed (fitting the intercept separately).
struct CenteredDesign {
    var x: Matrix
    var y: [Double]
    var featureMeans: [Double]
    var targetMean: Double

    init(_ features: [[Double]], _ targets: [Double]) {
        let n = features.count, width = features[0].count
        let means = (0..<width).map { c in features.reduce(0) { $0 + $1[c] } / Double(n) }
        let yMean = mean(targets)
        var centered = Matrix(features.map { row in (0..<width).map { row[$0] - means[$0] } })
        centered.columns = width
        featureMeans = means
        targetMean = yMean
        x = centered
        y = targets.map { $0 - yMean }
    }

    func interceptFor(_ coefficients: [Double]) -> Double {
        targetMean - zip(featureMeans, coefficients).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

/// Bayesian ridge regression with evidence maximisation, the algorithm of scikit-learn's
/// `BayesianRidge` (MacKay 1992; Tipping 2001) with the same defaults.
///
/// Prior w ~ N(0, 1/lambda I), noise ~ N(0, 1/alpha), Gamma hyper-priors (alpha1, alpha2) and
/// (lambda1, lambda2). Starting from alpha = 1/var(y), lambda = 1, each iteration computes the
/// posterior mean, the effective number of parameters gamma = sum alpha e_k / (lambda + alpha e_k)
/// over the eigenvalues e_k of Xc^T Xc, and the fixed-point updates
/// lambda = (gamma + 2 lambda1) / (|w|^2 + 2 lambda2), alpha = (n - gamma + 2 alpha1) / (SSE + 2 alpha2),
/// stopping when the L1 change of w drops below `tolerance`.
public struct BayesianRidge: PerformancePredictor, Codable, Hashable {
    public var name: String { "bayesian_ridge" }
    public var maxIterations: Int
    public var tolerance: Double
    public var alpha1: Double, alpha2: Double, lambda1: Double, lambda2: Double

    public private(set) var coefficients: [Double] = []
    public private(set) var intercept: Double = 0
    /// Fitted noise precision and weight precision.
    public private(set) var alpha: Double = 0
    public private(set) var lambda: Double = 0
    public private(set) var iterations: Int = 0
    private var featureMeans: [Double] = []
    /// Posterior covariance of the weights, row-major, width x width.
    private var posteriorCovariance: [Double] = []

    public init(maxIterations: Int = 300, tolerance: Double = 1e-3,
                alpha1: Double = 1e-6, alpha2: Double = 1e-6, lambda1: Double = 1e-6, lambda2: Double = 1e-6) {
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.alpha1 = alpha1; self.alpha2 = alpha2; self.lambda1 = lambda1; self.lambda2 = lambda2
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        let width = try PredictorInput.checkTraining(name, features, targets)
        guard maxIterations >= 1 else {
            throw PredictorError.invalidHyperparameter(model: name, name: "maxIterations", value: Double(maxIterations), expected: ">= 1")
        }
        for (label, v) in [("alpha1", alpha1), ("alpha2", alpha2), ("lambda1", lambda1), ("lambda2", lambda2)] {
            try PredictorInput.nonNegative(name, label, v)
        }
        let n = Double(features.count)
        let design = CenteredDesign(features, targets)
        let targetVariance = design.y.reduce(0) { $0 + $1 * $1 } / n
        var a = 1 / (targetVariance + Double.ulpOfOne)
        var l = 1.0
        let eigen = SymmetricEigen(design.x.gram)
        // Jacobi can leave tiny negative round-off on a singular Gram matrix; the spectrum is >= 0.
        let eigenvalues = eigen.values.map { max($0, 0) }
        let xty = design.x.transposeTimes(design.y)
        func posteriorMean(_ a: Double, _ l: Double) -> (w: [Double], sse: Double) {
            let w = eigen.apply(xty) { 1 / (max($0, 0) + l / a) }
            let fitted = design.x.times(w)
            let sse = zip(design.y, fitted).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            return (w, sse)
        }
        var previous: [Double] = []
        var iteration = 0
        while iteration < maxIterations {
            let (w, sse) = posteriorMean(a, l)
            let gamma = eigenvalues.reduce(0) { $0 + a * $1 / (l + a * $1) }
            l = (gamma + 2 * lambda1) / (w.reduce(0) { $0 + $1 * $1 } + 2 * lambda2)
            a = (n - gamma + 2 * alpha1) / (sse + 2 * alpha2)
            iteration += 1
            if !previous.isEmpty && zip(previous, w).reduce(0, { $0 + abs($1.0 - $1.1) }) < tolerance { break }
            previous = w
        }
        iterations = iteration
        alpha = a
        lambda = l
        coefficients = width == 0 ? [] : posteriorMean(a, l).w
        intercept = design.interceptFor(coefficients)
        featureMeans = design.featureMeans
        var covariance = [Double](repeating: 0, count: width * width)
        for i in 0..<width {
            for j in 0..<width {
                var s = 0.0
                for k in 0..<width { s += eigen.vector(i, k) * eigen.vector(j, k) / (a * eigenvalues[k] + l) }
                covariance[i * width + j] = s
            }
        }
        posteriorCovariance = covariance
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard alpha > 0 else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: coefficients.count)
        return features.map { row in zip(row, coefficients).reduce(intercept) { $0 + $1.0 * $1.1 } }
    }

    /// Predictive standard deviation sqrt(x^T Sigma x + 1/alpha) with x centred on the training means.
    public func predictStandardDeviation(_ features: [[Double]]) throws -> [Double] {
        guard alpha > 0 else { throw PredictorError.notFitted(model: name) }
        let width = coefficients.count
        try PredictorInput.checkRows(name, features, width: width)
        return features.map { row in
            let x = (0..<width).map { row[$0] - featureMeans[$0] }
            var s = 0.0
            for i in 0..<width { for j in 0..<width { s += x[i] * posteriorCovariance[i * width + j] * x[j] } }
            return (s + 1 / alpha).squareRoot()
        }
    }
}
