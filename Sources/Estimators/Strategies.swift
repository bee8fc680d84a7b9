// The strategies the selection ranks, as values the search can run again: a learning-curve
// rule on the first epochs of a full training, a model-based predictor fitted on the references,
// or a zero-cost proxy. The selection and the search's estimators share these definitions, so
// a strategy scores a search trial exactly as it scored the references it was chosen on.
import Estimation
import Foundation
import Vision
import ZeroCostProxies

/// A rule read off the first `epochs` epochs of a `fullEpochs`-epoch training (the schedule
/// stays fitted to the full length, so these are the first epochs of a real full training).
public struct LearningCurveStrategy: Hashable, Sendable, Codable {
    public enum Rule: String, CaseIterable, Sendable, Codable {
        /// Validation AP@0.5 after the last epoch (early stopping).
        case validationAP = "val_ap"
        /// Negated sum of the epochs' mean training losses (SoTL, Ru et al. 2021).
        case sumOfTrainingLosses = "sotl"
        /// Negated mean training loss of the last epoch alone (SoTL-E).
        case lastEpochTrainingLoss = "sotl_last"
        /// Negated validation loss after the last epoch.
        case validationLoss = "val_loss"
        /// A power law fitted to every epoch's validation AP, read at the full length.
        case extrapolatePowerLaw = "extrapolate_power_law"

        /// The fewest epochs the rule is defined on.
        var minimumEpochs: Int {
            switch self {
            case .lastEpochTrainingLoss: 2
            case .extrapolatePowerLaw: 3
            default: 1
            }
        }
    }

    /// Which epochs need a validation pass: the cost of a rule depends on it.
    public enum Validation: Sendable {
        case none, lastEpoch, everyEpoch
    }

    public var rule: Rule
    public var epochs: Int
    public var fullEpochs: Int

    public init(rule: Rule, epochs: Int, fullEpochs: Int) {
        self.rule = rule
        self.epochs = epochs
        self.fullEpochs = fullEpochs
    }

    /// `val_ap@3ep` and the like, as the rank table names it. `val_ap@0ep` is the AP of the
    /// network a run from pretrained weights starts as (inherited, recalibrated, untrained).
    public var name: String { "\(rule.rawValue)@\(epochs)ep" }

    /// AP@0.5 of inherited weights with no training at all (Once-for-All's subnetwork evaluation).
    public static func inheritedAP(fullEpochs: Int) -> LearningCurveStrategy {
        LearningCurveStrategy(rule: .validationAP, epochs: 0, fullEpochs: fullEpochs)
    }

    /// The strategy a rank-table name stands for, or nil when the name is not a learning-curve
    /// strategy valid for `fullEpochs`.
    public init?(name: String, fullEpochs: Int) {
        let parts = name.split(separator: "@")
        guard parts.count == 2, parts[1].hasSuffix("ep"), let rule = Rule(rawValue: String(parts[0])),
              let epochs = Int(parts[1].dropLast(2)), epochs >= rule.minimumEpochs || (epochs == 0 && rule == .validationAP),
              epochs < fullEpochs else { return nil }
        self.init(rule: rule, epochs: epochs, fullEpochs: fullEpochs)
    }

    /// Every rule defined at an epoch budget.
    public static func all(epochs: Int, fullEpochs: Int) -> [LearningCurveStrategy] {
        Rule.allCases.filter { epochs >= $0.minimumEpochs }.map { LearningCurveStrategy(rule: $0, epochs: epochs, fullEpochs: fullEpochs) }
    }

    public var validation: Validation {
        switch rule {
        case .validationAP, .validationLoss: .lastEpoch
        case .extrapolatePowerLaw: .everyEpoch
        case .sumOfTrainingLosses, .lastEpochTrainingLoss: .none
        }
    }

    /// Higher = predicted better. NaN when the rule cannot score the run (a curve fit that
    /// fails, or `val_ap@0ep` on a run from scratch).
    public func score(_ run: ReferenceRun) -> Double {
        if epochs == 0 { return run.initialAP ?? .nan }
        let losses = Array(run.trainingLosses.prefix(epochs))
        func curve(_ metric: [Double]) -> LearningCurve { LearningCurve(trainingLosses: losses, validationMetric: Array(metric.prefix(epochs))) }
        let estimator: any LearningCurveEstimator
        var metric = run.validationAP
        switch rule {
        case .validationAP: estimator = LastValidationMetric()
        case .sumOfTrainingLosses: estimator = SumOfTrainingLosses()
        case .lastEpochTrainingLoss: estimator = SumOfTrainingLosses(lastEpochs: 1)
        case .validationLoss:
            estimator = LastValidationMetric()
            metric = run.validationLosses.map { -$0 }
        case .extrapolatePowerLaw: estimator = CurveExtrapolation(model: .powerLaw, targetEpoch: fullEpochs)
        }
        return (try? estimator.score(curve(metric))) ?? .nan
    }

    /// The epochs after which the rule reads a validation pass (0: the starting network).
    public var validatedEpochs: Set<Int> {
        if epochs == 0 { return [0] }
        switch validation {
        case .none: return []
        case .lastEpoch: return [epochs]
        case .everyEpoch: return Set(1...epochs)
        }
    }

    /// Seconds the rule costs on a run: its epochs of training and the validation passes it needs.
    public func cost(_ run: ReferenceRun) -> Double {
        if epochs == 0 { return run.initialSeconds ?? .nan }
        let training = run.epochSeconds.prefix(epochs).reduce(0, +)
        switch validation {
        case .none: return training
        case .lastEpoch: return training + run.evaluationSeconds[epochs - 1]
        case .everyEpoch: return training + run.evaluationSeconds.prefix(epochs).reduce(0, +)
        }
    }
}

/// The model-based predictors the selection cross-validates, and their input: the head space's
/// ordinal encoding plus log10 parameters and log10 multiply-accumulates.
public enum PredictorStrategy {
    /// Every predictor, for `trainingRows` training rows (kNN looks at no more neighbours than that).
    public static func models(seed: UInt64, trainingRows: Int) -> [any PerformancePredictor] {
        [
            BayesianRidge(), OrdinaryLeastSquares(), GaussianProcessRegressor(seed: seed), RandomForestRegressor(seed: seed),
            GradientBoostedTrees(maxDepth: 3, seed: seed), KNearestNeighbors(neighbourCount: min(5, trainingRows)),
            SupportVectorRegressor(), MultilayerPerceptron(seed: seed),
        ]
    }

    public static var names: [String] { models(seed: 0, trainingRows: 5).map(\.name) }

    /// A fresh predictor of that name.
    public static func model(named name: String, seed: UInt64, trainingRows: Int) -> (any PerformancePredictor)? {
        models(seed: seed, trainingRows: trainingRows).first { $0.name == name }
    }

    /// The feature rows of architectures in `space` (which must list every head value they use).
    public static func features(_ architectures: [DetectorArchitecture], space: DetectorHeadSpace) throws -> [[Double]] {
        let graphs = try architectures.map { try DetectorGraph($0) }
        return try space.encoding.featureMatrix(
            architectures.map(DetectorHeadSpace.configuration),
            extraFeatures: graphs.map { [log10(Double(max(1, $0.parameterCount))), log10(Double(max(1, $0.multiplyAccumulates)))] })
    }
}

/// What a rank-table name stands for.
public enum StrategyReference: Hashable, Sendable {
    case learningCurve(LearningCurveStrategy)
    case predictor(String)
    case proxy(ZeroCostProxy)

    public init?(name: String, fullEpochs: Int) {
        if let strategy = LearningCurveStrategy(name: name, fullEpochs: fullEpochs) {
            self = .learningCurve(strategy)
        } else if let proxy = ZeroCostProxy(rawValue: name) {
            self = .proxy(proxy)
        } else if PredictorStrategy.names.contains(name) {
            self = .predictor(name)
        } else {
            return nil
        }
    }
}
