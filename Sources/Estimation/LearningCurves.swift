// Estimators that score a partially trained architecture from its recorded learning curve, with no
// access to the network itself (so no torch): sums of training losses and curve extrapolation.
import Foundation

/// Per-epoch records of one training run. Epochs are 1-based: index 0 holds epoch 1.
public struct LearningCurve: Codable, Sendable, Hashable {
    /// Mean training loss of each epoch.
    public var trainingLosses: [Double]
    /// Validation metric after each epoch (e.g. AP or accuracy), higher is better.
    public var validationMetric: [Double]

    public init(trainingLosses: [Double] = [], validationMetric: [Double] = []) {
        self.trainingLosses = trainingLosses
        self.validationMetric = validationMetric
    }
}

public enum LearningCurveError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(series: String, count: Int, required: Int)
    case nonFinite(series: String, epoch: Int)
    case invalidSetting(name: String, value: Double, expected: String)
    case fitFailed(model: String)

    public var description: String {
        switch self {
        case .tooShort(let s, let n, let r): "\(s) has \(n) epochs; expected at least \(r)"
        case .nonFinite(let s, let e): "\(s) is not finite at epoch \(e); expected finite values"
        case .invalidSetting(let n, let v, let e): "\(n) = \(v); expected \(e)"
        case .fitFailed(let m): "\(m) fit did not converge to finite parameters"
        }
    }
}

/// Scores a recorded curve; a higher score means the architecture is predicted to be better.
public protocol LearningCurveEstimator: Sendable {
    var name: String { get }
    func score(_ curve: LearningCurve) throws -> Double
}

private func checkSeries(_ name: String, _ values: [Double], required: Int) throws {
    guard values.count >= required else { throw LearningCurveError.tooShort(series: name, count: values.count, required: required) }
    if let i = values.firstIndex(where: { !$0.isFinite }) { throw LearningCurveError.nonFinite(series: name, epoch: i + 1) }
}

/// Sum of training losses (Ru et al. 2021). With `lastEpochs = nil` this is SoTL, the sum over all
/// recorded epochs; with `lastEpochs = E` it is SoTL-E, the sum over the most recent E epochs only,
/// which discounts the early, architecture-independent part of training. The score is the negated
/// sum, so that lower loss ranks higher.
public struct SumOfTrainingLosses: LearningCurveEstimator, Codable, Hashable {
    public var lastEpochs: Int?
    public var name: String { lastEpochs.map { "sotl_e\($0)" } ?? "sotl" }

    public init(lastEpochs: Int? = nil) {
        self.lastEpochs = lastEpochs
    }

    public func score(_ curve: LearningCurve) throws -> Double {
        if let e = lastEpochs, e < 1 { throw LearningCurveError.invalidSetting(name: "lastEpochs", value: Double(e), expected: ">= 1") }
        let window = lastEpochs ?? 1
        try checkSeries("trainingLosses", curve.trainingLosses, required: window)
        let used = lastEpochs.map { curve.trainingLosses.suffix($0) } ?? curve.trainingLosses[...]
        return -used.reduce(0, +)
    }
}

/// Parametric saturating curve models y(t) with three parameters (a, b, c).
public enum SaturatingCurveModel: String, Codable, Sendable, Hashable, CaseIterable {
    /// y = a - b t^(-c): power-law approach to the asymptote a.
    case powerLaw = "power_law"
    /// y = a - b exp(-c t): exponential saturation towards a.
    case exponential

    func value(_ p: [Double], _ t: Double) -> Double {
        switch self {
        case .powerLaw: p[0] - p[1] * pow(t, -p[2])
        case .exponential: p[0] - p[1] * exp(-p[2] * t)
        }
    }

    /// Partial derivatives with respect to (a, b, c).
    func gradient(_ p: [Double], _ t: Double) -> [Double] {
        switch self {
        case .powerLaw:
            let q = pow(t, -p[2])
            return [1, -q, p[1] * q * log(t)]
        case .exponential:
            let q = exp(-p[2] * t)
            return [1, -q, p[1] * t * q]
        }
    }
}

/// A fitted curve model.
public struct FittedCurve: Codable, Sendable, Hashable {
    public var model: SaturatingCurveModel
    public var parameters: [Double]
    public var sumOfSquaredResiduals: Double

    public func predict(epoch: Double) -> Double { model.value(parameters, epoch) }
}

/// Least-squares fit of a saturating model to (epoch, value) points by Levenberg-Marquardt
/// (Marquardt 1963): damped Gauss-Newton steps (J^T J + mu diag(J^T J)) delta = J^T r, with mu
/// divided by 3 after an accepted step and multiplied by 4 after a rejected one.
public func fitSaturatingCurve(_ model: SaturatingCurveModel, epochs: [Double], values: [Double], maxIterations: Int = 500) throws -> FittedCurve {
    guard epochs.count == values.count, epochs.count >= 3 else {
        throw LearningCurveError.tooShort(series: "curve points", count: min(epochs.count, values.count), required: 3)
    }
    try checkSeries("values", values, required: 3)
    if let i = epochs.firstIndex(where: { !($0 > 0) || !$0.isFinite }) {
        throw LearningCurveError.invalidSetting(name: "epoch[\(i)]", value: epochs[i], expected: "finite and > 0")
    }
    let last = values.last!, first = values.first!
    let span = max(abs(last - first), 1e-6)
    // Start: asymptote a little beyond the last value, rising curve, moderate rate.
    var p = [last + 0.1 * span, last + 0.1 * span - first, model == .powerLaw ? 0.5 : 3 / max(epochs.last!, 1)]
    func sse(_ q: [Double]) -> Double {
        zip(epochs, values).reduce(0) { s, e in let r = e.1 - model.value(q, e.0); return s + r * r }
    }
    var current = sse(p)
    var mu = 1e-3
    for _ in 0..<maxIterations {
        var jtj = Matrix(rows: 3, columns: 3)
        var jtr = [0.0, 0.0, 0.0]
        for (t, y) in zip(epochs, values) {
            let g = model.gradient(p, t), r = y - model.value(p, t)
            for i in 0..<3 {
                jtr[i] += g[i] * r
                for j in 0..<3 { jtj[i, j] += g[i] * g[j] }
            }
        }
        var improved = false
        while mu < 1e12 {
            var damped = jtj
            for i in 0..<3 { damped[i, i] += mu * max(jtj[i, i], 1e-12) }
            guard let factor = try? CholeskyFactor(damped) else { mu *= 4; continue }
            let step = factor.solve(jtr)
            var candidate = zip(p, step).map { $0 + $1 }
            candidate[2] = max(candidate[2], 1e-8)   // the rate must stay positive for a saturating curve
            let value = sse(candidate)
            if value.isFinite && value < current {
                let relative = (current - value) / max(current, 1e-300)
                p = candidate; current = value; mu = max(mu / 3, 1e-12); improved = true
                if relative < 1e-12 { return FittedCurve(model: model, parameters: p, sumOfSquaredResiduals: current) }
                break
            }
            mu *= 4
        }
        if !improved { break }
    }
    guard p.allSatisfy(\.isFinite) else { throw LearningCurveError.fitFailed(model: model.rawValue) }
    return FittedCurve(model: model, parameters: p, sumOfSquaredResiduals: current)
}

/// Learning-curve extrapolation: fits `model` to the recorded validation metric and predicts its
/// value at `targetEpoch` (the full training length), e.g. the final AP from the first 10 epochs.
public struct CurveExtrapolation: LearningCurveEstimator, Codable, Hashable {
    public var model: SaturatingCurveModel
    public var targetEpoch: Int
    public var name: String { "extrapolate_\(model.rawValue)_e\(targetEpoch)" }

    public init(model: SaturatingCurveModel = .powerLaw, targetEpoch: Int) {
        self.model = model
        self.targetEpoch = targetEpoch
    }

    public func score(_ curve: LearningCurve) throws -> Double {
        guard targetEpoch >= 1 else { throw LearningCurveError.invalidSetting(name: "targetEpoch", value: Double(targetEpoch), expected: ">= 1") }
        try checkSeries("validationMetric", curve.validationMetric, required: 3)
        let epochs = (1...curve.validationMetric.count).map(Double.init)
        return try fitSaturatingCurve(model, epochs: epochs, values: curve.validationMetric).predict(epoch: Double(targetEpoch))
    }
}

/// The last recorded validation metric: the plain early-stopping baseline.
public struct LastValidationMetric: LearningCurveEstimator, Codable, Hashable {
    public var name: String { "last_validation" }
    public init() {}

    public func score(_ curve: LearningCurve) throws -> Double {
        try checkSeries("validationMetric", curve.validationMetric, required: 1)
        return curve.validationMetric.last!
    }
}
