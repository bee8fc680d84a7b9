// Gaussian process regression with a stationary kernel, as scikit-learn's GaussianProcessRegressor
// with kernel ConstantKernel(signalVariance) * k(lengthScale) + WhiteKernel(noiseVariance).
import Foundation
import Randomness

/// Covariance function of the GP.
public enum GaussianProcessKernel: String, Codable, Sendable, Hashable, CaseIterable {
    /// exp(-d^2 / (2 l^2)).
    case rbf
    /// (1 + sqrt(5) d/l + 5 d^2 / (3 l^2)) exp(-sqrt(5) d / l): rougher than RBF, often better for
    /// discrete architecture encodings.
    case matern52

    func correlation(squaredDistance d2: Double, lengthScale l: Double) -> Double {
        switch self {
        case .rbf:
            return exp(-0.5 * d2 / (l * l))
        case .matern52:
            let r = 5.0.squareRoot() * d2.squareRoot() / l
            return (1 + r + r * r / 3) * exp(-r)
        }
    }
}

/// Kernel hyper-parameters.
public struct GaussianProcessHyperparameters: Codable, Sendable, Hashable {
    public var lengthScale: Double
    public var signalVariance: Double
    public var noiseVariance: Double

    public init(lengthScale: Double, signalVariance: Double, noiseVariance: Double) {
        self.lengthScale = lengthScale
        self.signalVariance = signalVariance
        self.noiseVariance = noiseVariance
    }
}

/// GP regression. With `optimizeHyperparameters` the length scale, signal variance and noise are
/// chosen by maximising the log marginal likelihood (Nelder-Mead in log space from the initial
/// values and `restarts` seeded random starts, each parameter bounded to [1e-5, 1e5] like
/// scikit-learn's defaults); otherwise `initial` is used as given.
/// With `normalizeTargets` (scikit-learn's normalize_y) the targets are standardised before fitting.
public struct GaussianProcessRegressor: PerformancePredictor, Codable, Hashable {
    public var name: String { "gp_\(kernel.rawValue)" }
    public var kernel: GaussianProcessKernel
    public var initial: GaussianProcessHyperparameters
    public var optimizeHyperparameters: Bool
    public var normalizeTargets: Bool
    /// Jitter added to the kernel diagonal for numerical stability (scikit-learn's `alpha`).
    public var jitter: Double
    public var restarts: Int
    public var seed: UInt64

    public private(set) var fitted: GaussianProcessHyperparameters?
    public private(set) var logMarginalLikelihood: Double = .nan
    private var trainingRows: [[Double]] = []
    private var dualCoefficients: [Double] = []
    private var targetMean = 0.0, targetScale = 1.0
    private var choleskyLower: [Double] = []

    public init(kernel: GaussianProcessKernel = .rbf,
                initial: GaussianProcessHyperparameters = .init(lengthScale: 1, signalVariance: 1, noiseVariance: 1e-2),
                optimizeHyperparameters: Bool = true, normalizeTargets: Bool = true,
                jitter: Double = 1e-10, restarts: Int = 3, seed: UInt64 = 0) {
        self.kernel = kernel
        self.initial = initial
        self.optimizeHyperparameters = optimizeHyperparameters
        self.normalizeTargets = normalizeTargets
        self.jitter = jitter
        self.restarts = restarts
        self.seed = seed
    }

    private static func squaredDistance(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { let d = a[i] - b[i]; s += d * d }
        return s
    }

    private func covariance(_ rows: [[Double]], _ h: GaussianProcessHyperparameters) -> Matrix {
        let n = rows.count
        var k = Matrix(rows: n, columns: n)
        for i in 0..<n {
            for j in i..<n {
                let v = h.signalVariance * kernel.correlation(squaredDistance: Self.squaredDistance(rows[i], rows[j]), lengthScale: h.lengthScale)
                k[i, j] = v; k[j, i] = v
            }
            k[i, i] += h.noiseVariance + jitter
        }
        return k
    }

    /// log p(y | X, h) = -y^T K^-1 y / 2 - log|K| / 2 - n log(2 pi) / 2, or nil when K is not positive definite.
    private func logLikelihood(_ rows: [[Double]], _ y: [Double], _ h: GaussianProcessHyperparameters) -> (Double, CholeskyFactor, [Double])? {
        guard let factor = try? CholeskyFactor(covariance(rows, h)) else { return nil }
        let dual = factor.solve(y)
        let fit = zip(y, dual).reduce(0) { $0 + $1.0 * $1.1 }
        let value = -0.5 * fit - 0.5 * factor.logDeterminant - 0.5 * Double(y.count) * log(2 * Double.pi)
        return (value, factor, dual)
    }

    public mutating func fit(features: [[Double]], targets: [Double]) throws {
        _ = try PredictorInput.checkTraining(name, features, targets)
        try PredictorInput.positive(name, "lengthScale", initial.lengthScale)
        try PredictorInput.positive(name, "signalVariance", initial.signalVariance)
        try PredictorInput.nonNegative(name, "noiseVariance", initial.noiseVariance)
        try PredictorInput.nonNegative(name, "jitter", jitter)
        if normalizeTargets {
            targetMean = mean(targets)
            let sd = (targets.reduce(0) { $0 + ($1 - targetMean) * ($1 - targetMean) } / Double(targets.count)).squareRoot()
            targetScale = sd > 0 ? sd : 1
        } else {
            targetMean = 0; targetScale = 1
        }
        let y = targets.map { ($0 - targetMean) / targetScale }
        var chosen = initial
        if optimizeHyperparameters {
            let bound = log(1e5)
            let objective: ([Double]) -> Double = { p in
                if p.contains(where: { abs($0) > bound }) { return .infinity }
                let h = GaussianProcessHyperparameters(lengthScale: exp(p[0]), signalVariance: exp(p[1]), noiseVariance: exp(p[2]))
                return -(self.logLikelihood(features, y, h)?.0 ?? -.infinity)
            }
            var starts = [[log(initial.lengthScale), log(initial.signalVariance), log(max(initial.noiseVariance, 1e-5))]]
            var rng = SplitMix64(seed: seed)
            for _ in 0..<max(0, restarts) {
                // Random starts over a plausible range rather than the full bounds, where the
                // likelihood is flat and the simplex stalls.
                starts.append([log(1e-2) + rng.nextUnit() * log(1e4), log(1e-1) + rng.nextUnit() * log(1e2), log(1e-4) + rng.nextUnit() * log(1e4)])
            }
            var best = (point: starts[0], value: Double.infinity)
            for start in starts {
                let result = nelderMeadMinimize(objective, start: start)
                if result.value < best.value { best = result }
            }
            guard best.value.isFinite else {
                throw PredictorError.numericalFailure(model: name, detail: "no hyper-parameters gave a positive-definite kernel matrix")
            }
            chosen = .init(lengthScale: exp(best.point[0]), signalVariance: exp(best.point[1]), noiseVariance: exp(best.point[2]))
        }
        guard let (value, factor, dual) = logLikelihood(features, y, chosen) else {
            throw PredictorError.numericalFailure(model: name, detail: "kernel matrix is not positive definite; raise noiseVariance or jitter")
        }
        fitted = chosen
        logMarginalLikelihood = value
        trainingRows = features
        dualCoefficients = dual
        choleskyLower = factor.lower.values
    }

    private func crossCovariance(_ row: [Double], _ h: GaussianProcessHyperparameters) -> [Double] {
        trainingRows.map { h.signalVariance * kernel.correlation(squaredDistance: Self.squaredDistance($0, row), lengthScale: h.lengthScale) }
    }

    public func predict(_ features: [[Double]]) throws -> [Double] {
        guard let h = fitted else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: trainingRows[0].count)
        return features.map { row in
            let k = crossCovariance(row, h)
            return zip(k, dualCoefficients).reduce(0) { $0 + $1.0 * $1.1 } * targetScale + targetMean
        }
    }

    /// Posterior predictive standard deviation of the latent function plus noise
    /// (scikit-learn's return_std, whose WhiteKernel diagonal includes the noise).
    public func predictStandardDeviation(_ features: [[Double]]) throws -> [Double] {
        guard let h = fitted else { throw PredictorError.notFitted(model: name) }
        try PredictorInput.checkRows(name, features, width: trainingRows[0].count)
        let n = trainingRows.count
        var lower = Matrix(rows: n, columns: n)
        lower.values = choleskyLower
        let factor = CholeskyFactor(lower: lower)
        return features.map { row in
            let v = factor.solveLower(crossCovariance(row, h))
            let variance = h.signalVariance + h.noiseVariance - v.reduce(0) { $0 + $1 * $1 }
            return max(variance, 0).squareRoot() * targetScale
        }
    }
}
