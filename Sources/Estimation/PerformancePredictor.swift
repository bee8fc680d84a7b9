// Model-based performance predictors: learn accuracy (or any score) from architecture features.
//
// A predictor is trained on the few architectures that were actually evaluated and then ranks the
// rest of the search space; what matters is the rank correlation of its predictions with the truth
// (see RankStatistics). Features are plain numeric rows, typically an ArchitectureEncoding output,
// optionally with caller-supplied columns such as FLOPs or parameter counts appended.

/// Errors raised by predictors on malformed training or query data.
public enum PredictorError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyTrainingSet(model: String)
    case targetCountMismatch(model: String, rows: Int, targets: Int)
    /// A row whose width differs from the first row (or from the width seen at fit time).
    case featureCountMismatch(model: String, row: Int, expected: Int, found: Int)
    case nonFiniteValue(model: String, row: Int, column: Int)
    case nonFiniteTarget(model: String, row: Int)
    case notFitted(model: String)
    case invalidHyperparameter(model: String, name: String, value: Double, expected: String)
    /// A numerical step failed (e.g. a kernel matrix that is not positive definite).
    case numericalFailure(model: String, detail: String)

    public var description: String {
        switch self {
        case .emptyTrainingSet(let m): "\(m): no training rows; expected at least one"
        case .targetCountMismatch(let m, let r, let t): "\(m): \(r) feature rows but \(t) targets; expected one target per row"
        case .featureCountMismatch(let m, let r, let e, let f): "\(m): row \(r) has \(f) features; expected \(e)"
        case .nonFiniteValue(let m, let r, let c): "\(m): feature [\(r), \(c)] is not finite; expected a finite number"
        case .nonFiniteTarget(let m, let r): "\(m): target \(r) is not finite; expected a finite number"
        case .notFitted(let m): "\(m): predict called before fit"
        case .invalidHyperparameter(let m, let n, let v, let e): "\(m): \(n) = \(v); expected \(e)"
        case .numericalFailure(let m, let d): "\(m): \(d)"
        }
    }
}

/// A regression model from feature rows to a scalar score.
public protocol PerformancePredictor: Sendable {
    /// Short human-readable model name used in tables and error messages.
    var name: String { get }
    /// Fits the model; refitting replaces the previous fit.
    mutating func fit(features: [[Double]], targets: [Double]) throws
    /// Predicts one score per row.
    func predict(_ features: [[Double]]) throws -> [Double]
}

/// Shared input checks so every model reports malformed data the same way.
enum PredictorInput {
    static func checkTraining(_ model: String, _ features: [[Double]], _ targets: [Double]) throws -> Int {
        guard !features.isEmpty else { throw PredictorError.emptyTrainingSet(model: model) }
        guard features.count == targets.count else {
            throw PredictorError.targetCountMismatch(model: model, rows: features.count, targets: targets.count)
        }
        let width = features[0].count
        try checkRows(model, features, width: width)
        if let i = targets.firstIndex(where: { !$0.isFinite }) { throw PredictorError.nonFiniteTarget(model: model, row: i) }
        return width
    }

    static func checkRows(_ model: String, _ features: [[Double]], width: Int) throws {
        for (r, row) in features.enumerated() {
            guard row.count == width else {
                throw PredictorError.featureCountMismatch(model: model, row: r, expected: width, found: row.count)
            }
            if let c = row.firstIndex(where: { !$0.isFinite }) { throw PredictorError.nonFiniteValue(model: model, row: r, column: c) }
        }
    }

    static func positive(_ model: String, _ name: String, _ value: Double) throws {
        guard value > 0, value.isFinite else {
            throw PredictorError.invalidHyperparameter(model: model, name: name, value: value, expected: "> 0")
        }
    }

    static func nonNegative(_ model: String, _ name: String, _ value: Double) throws {
        guard value >= 0, value.isFinite else {
            throw PredictorError.invalidHyperparameter(model: model, name: name, value: value, expected: ">= 0")
        }
    }
}

/// Column means and standard deviations, used by the models that need standardised inputs.
struct Standardizer: Sendable, Hashable, Codable {
    var means: [Double]
    var scales: [Double]

    init(_ rows: [[Double]]) {
        let n = Double(rows.count), width = rows.first?.count ?? 0
        means = (0..<width).map { c in rows.reduce(0) { $0 + $1[c] } / n }
        scales = (0..<width).map { c in
            let m = rows.reduce(0) { $0 + $1[c] } / n
            let sd = (rows.reduce(0) { $0 + ($1[c] - m) * ($1[c] - m) } / n).squareRoot()
            // A constant column carries no information; scaling it by 1 keeps it at zero.
            return sd > 0 ? sd : 1
        }
    }

    func apply(_ row: [Double]) -> [Double] { (0..<row.count).map { (row[$0] - means[$0]) / scales[$0] } }
}

func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
