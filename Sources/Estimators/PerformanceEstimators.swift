// The search's performance estimators: the protocol, the training run they share, and every
// estimator a config can name (the catalog that maps names to them lives in Workflow).
import DetectionData
import Estimation
import Foundation
import Hardware
import Torch
import Vision
import ZeroCostProxies

/// What an estimator says about one architecture.
public struct PerformanceEstimate: Codable, Hashable, Sendable {
    /// Higher is better. AP@0.5 for the AP-based estimators; another quantity (e.g. the
    /// negated sum of training losses) for the others.
    public var score: Double
    /// AP@0.5 on the validation split measured by this estimate (at its fidelity), if any.
    public var ap50: Double?
    /// Wall-clock seconds the estimate took.
    public var seconds: Double
    /// Training epochs spent (0 for estimators that do not train).
    public var epochs: Int

    public init(score: Double, ap50: Double?, seconds: Double, epochs: Int) {
        self.score = score
        self.ap50 = ap50
        self.seconds = seconds
        self.epochs = epochs
    }
}

/// Receives AP@0.5 on the validation split after a training epoch: (epochs trained so far,
/// AP@0.5), 0 epochs being the starting network of a fine-tune. An error it throws (a
/// pruner's stop) ends the training there and is rethrown by the estimator.
public typealias EpochReport = (_ epochs: Int, _ ap50: Double) throws -> Void

/// Estimates how good an architecture is, cheaply or fully. Full training, short training
/// with a learning-curve rule, zero-cost proxies and predictors all plug in here.
public protocol PerformanceEstimator: Sendable {
    /// A stable name stored with each trial, e.g. "full" or "short".
    var name: String { get }
    /// Whether `score` is the final AP@0.5 of a full training, so the search's front needs no
    /// retraining.
    var isFullFidelity: Bool { get }
    /// - Parameter afterEpoch: given, an estimator that trains validates after every epoch and
    ///   reports AP@0.5 there (what a pruner judges a trial by); one that does not train
    ///   never calls it.
    func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate
}

extension PerformanceEstimator {
    /// The estimate with no one watching its epochs (validation only where the estimator's rule needs it).
    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
        try estimate(architecture, trialNumber: trialNumber, afterEpoch: nil)
    }
}

/// The training and validation splits of a project's dataset.
public struct DatasetSplits: Sendable {
    public var train: any DetectionDataset
    public var validation: any DetectionDataset

    public init(train: any DetectionDataset, validation: any DetectionDataset) {
        self.train = train
        self.validation = validation
    }
}

/// Training settings shared by the training-based estimators.
public struct TrainingRecipe: Codable, Hashable, Sendable {
    public var batchSize: Int
    public var learningRate: Double
    public var optimizer: TrainingConfiguration.Optimizer
    public var threads: Int
    public var seed: UInt64
    /// Pretrained weights every network starts from (nil: from scratch) and their class list.
    public var initialization: String?
    public var initializationClasses: String?
    public var freezeBackboneEpochs: Int

    public init(batchSize: Int = 16, learningRate: Double = 0.01, optimizer: TrainingConfiguration.Optimizer = .adamw,
                threads: Int = 1, seed: UInt64 = 0, initialization: String? = nil, initializationClasses: String? = nil,
                freezeBackboneEpochs: Int = 0) {
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.threads = threads
        self.seed = seed
        self.initialization = initialization
        self.initializationClasses = initializationClasses
        self.freezeBackboneEpochs = freezeBackboneEpochs
    }

    /// One training's schedule: from scratch, or fine-tuning (short warm-up) when the recipe
    /// starts from pretrained weights; the warm-up is capped later at a fifth of the run.
    public var configuration: TrainingConfiguration {
        var configuration = TrainingConfiguration.defaults(fineTuning: initialization != nil, optimizer: optimizer, seed: seed)
        configuration.learningRate = learningRate
        configuration.freezeBackboneEpochs = freezeBackboneEpochs
        return configuration
    }
}

/// The curve of one training run: mean training loss and (optionally) validation AP@0.5 per
/// epoch, plus the final AP@0.5. A run resumed from a checkpoint has NaN on its curve for the
/// epochs the checkpoint had already finished (epochs keep their numbers).
public struct TrainingRun: Sendable {
    /// `validationMetric` is empty unless the run validated after every epoch.
    public var curve: LearningCurve
    /// AP@0.5 after the last epoch, measured whether or not the run validated each epoch.
    public var finalAP50: Double
    /// Seconds of training and validation, not counting the wait for the machine.
    public var seconds: Double
}

/// Trains an architecture on the splits, from scratch or from the recipe's pretrained weights
/// (same seed for every architecture, so differences come from the architecture), and measures
/// AP@0.5 on the validation split.
public struct DetectorTrainingRun: Sendable {
    public var splits: DatasetSplits
    public var recipe: TrainingRecipe
    /// The recipe's pretrained weights, read once.
    public let initialization: DetectorInitialization?

    public init(splits: DatasetSplits, recipe: TrainingRecipe) throws {
        self.splits = splits
        self.recipe = recipe
        initialization = try recipe.initialization.map {
            try DetectorInitialization(path: $0, classNames: splits.train.classNames, classNamesFile: recipe.initializationClasses)
        }
    }

    /// Trains `epochs` epochs with the whole learning-rate schedule (warm-up, cosine decay)
    /// fitted to them, so a short run is a complete small training rather than the start of
    /// a long one. It is the reference trainer's full-length training, on the training machine.
    /// - Parameters:
    ///   - validateEachEpoch: measure AP@0.5 after every epoch (for curve extrapolation).
    ///   - checkpoint: directory to save to after each epoch and resume from (nil: none).
    ///   - afterEpoch: receives each validated epoch's AP@0.5 (and makes every epoch validated).
    public func train(
        _ architecture: DetectorArchitecture, epochs: Int, validateEachEpoch: Bool = false,
        checkpoint: URL? = nil, progress: @escaping (TrainingProgress) -> Void = { _ in }, afterEpoch: EpochReport? = nil
    ) throws -> TrainingRun {
        var trainer = referenceTrainer
        trainer.progress = progress
        return try onTrainingMachine {
            let started = Date()
            // Without the validation loss: no estimator built on a `TrainingRun` reads it, and it
            // would cost a second pass over the validation split after every validated epoch.
            let everyEpoch = validateEachEpoch || afterEpoch != nil
            let run = try trainer.train(architecture, epochs: epochs, stoppingAfter: epochs,
                                        validatingAfter: everyEpoch ? Set(0...epochs) : [epochs],
                                        measuringValidationLoss: false, checkpoint: checkpoint, afterValidation: afterEpoch)
            return TrainingRun(curve: LearningCurve(trainingLosses: run.trainingLosses,
                                                    validationMetric: everyEpoch ? run.validationAP : []),
                               finalAP50: run.finalAP, seconds: Date().timeIntervalSince(started))
        }
    }

    /// AP@0.5 on the validation split of `weights` (saved by a training of `architecture`)
    /// after INT8 post-training quantization, calibrated on `calibrationImages` training images
    /// as `edgenas quantize` does; nil when this libtorch has no quantized engine.
    public func int8AP50(_ architecture: DetectorArchitecture, weights: URL, calibrationImages: Int = 32) throws -> Double? {
        guard let engine = QuantizedDetector.referenceEngine else { return nil }
        return try onTrainingMachine {
            let detector = try Detector(architecture)
            try detector.load(from: weights)
            detector.eval()
            let parameters = try Torch.withNoGrad {
                try QuantizationCalibrator.calibrate(detector, dataset: splits.train, imageCount: calibrationImages)
            }
            let int8 = try QuantizedDetector(detector, parameters: parameters, engine: engine)
            return try DetectorEvaluation.evaluate(architecture: architecture, on: splits.validation) { try int8($0) }.averagePrecision50
        }
    }

    /// Runs training work with the recipe's threads, holding the machine's training lock so
    /// that no latency measurement (here or in another EdgeNAS process) runs beside it; the
    /// pipeline measures between trainings.
    public func onTrainingMachine<T>(_ body: () throws -> T) throws -> T {
        let machineLock = try MeasurementLock(.training, timeout: 3600)
        defer { machineLock.release() }
        let previousThreads = Torch.threadCount
        Torch.setThreadCount(recipe.threads)
        defer { Torch.setThreadCount(previousThreads) }
        return try body()
    }

    /// The selection's trainer on these splits with this recipe (warm-up: the configuration's
    /// default 100 iterations, at most a fifth of the run). `train` runs it for the full length;
    /// call it inside `onTrainingMachine`, which sets the recipe's threads (with another thread
    /// count libtorch sums in another order, and the losses and AP differ).
    public var referenceTrainer: DetectorReferenceTrainer {
        DetectorReferenceTrainer(
            trainingSet: splits.train, validationSet: splits.validation, batchSize: recipe.batchSize,
            configuration: recipe.configuration, initialization: initialization)
    }
}

/// Full training for `epochs` epochs: the final AP@0.5 itself (the most faithful estimate, and
/// the most expensive).
public struct FullTrainingEstimator: PerformanceEstimator {
    public var run: DetectorTrainingRun
    public var epochs: Int
    public var name: String { "full" }
    public var isFullFidelity: Bool { true }

    public init(run: DetectorTrainingRun, epochs: Int) {
        self.run = run
        self.epochs = epochs
    }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        let result = try run.train(architecture, epochs: epochs, afterEpoch: afterEpoch)
        return PerformanceEstimate(score: result.finalAP50, ap50: result.finalAP50, seconds: result.seconds, epochs: epochs)
    }
}

/// Short training (a complete schedule of a few epochs) scored by a learning-curve rule:
/// - `short`: AP@0.5 at the end of the short training (early stopping);
/// - `sotl`: the negated sum of the epochs' mean training losses (Ru et al. 2021), which
///   needs no validation pass;
/// - `extrapolate`: a power law fitted to AP@0.5 after each epoch, read at the full length.
public struct ShortTrainingEstimator: PerformanceEstimator {
    public enum Rule: String, Codable, Hashable, Sendable, CaseIterable {
        case short, sotl, extrapolate
    }

    public var run: DetectorTrainingRun
    public var epochs: Int
    public var fullEpochs: Int
    public var rule: Rule
    public var name: String { rule.rawValue }
    public var isFullFidelity: Bool { false }

    public init(run: DetectorTrainingRun, epochs: Int, fullEpochs: Int, rule: Rule) {
        self.run = run
        self.epochs = epochs
        self.fullEpochs = fullEpochs
        self.rule = rule
    }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        let result = try run.train(architecture, epochs: epochs, validateEachEpoch: rule == .extrapolate, afterEpoch: afterEpoch)
        let score: Double = switch rule {
        case .short: result.finalAP50
        case .sotl: try SumOfTrainingLosses().score(result.curve)
        case .extrapolate: try CurveExtrapolation(model: .powerLaw, targetEpoch: fullEpochs).score(result.curve)
        }
        return PerformanceEstimate(score: score, ap50: result.finalAP50, seconds: result.seconds, epochs: epochs)
    }
}

/// A learning-curve strategy of the two-stage selection as the search's estimator (named as the
/// rank table names it, e.g. `val_ap@3ep` or `sotl_last@2ep`): the first epochs of a full
/// training, scored by the same rule, so a trial is scored as the references were.
public struct LearningCurveStrategyEstimator: PerformanceEstimator {
    public var strategy: LearningCurveStrategy
    public var run: DetectorTrainingRun

    public init(strategy: LearningCurveStrategy, run: DetectorTrainingRun) {
        self.strategy = strategy
        self.run = run
    }

    public var name: String { strategy.name }
    public var isFullFidelity: Bool { false }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        // Watched epochs are validated, whatever the strategy's own rule needs.
        let record = try run.onTrainingMachine {
            try run.referenceTrainer.train(architecture, epochs: strategy.fullEpochs, stoppingAfter: strategy.epochs,
                                           validatingAfter: afterEpoch == nil ? strategy.validatedEpochs : Set(0...strategy.epochs),
                                           afterValidation: afterEpoch)
        }
        let score = strategy.score(record)
        guard score.isFinite else { throw EstimatorError.unscorable(estimator: name, architecture: architecture.description) }
        let ap = (strategy.epochs == 0 ? record.initialAP : record.validationAP.last).flatMap { $0.isFinite ? $0 : nil }
        // Watched, every epoch was validated, and those passes count.
        let seconds = afterEpoch == nil ? strategy.cost(record) : (record.initialSeconds ?? 0)
            + record.epochSeconds.prefix(strategy.epochs).reduce(0, +) + record.evaluationSeconds.prefix(strategy.epochs).reduce(0, +)
        return PerformanceEstimate(score: score, ap50: ap, seconds: seconds, epochs: strategy.epochs)
    }
}

/// A model-based predictor fitted on the selection's fully trained references (features: the
/// head values' ordinal encoding, log10 parameters and log10 multiply-accumulates), predicting
/// a trial's AP@0.5 without training it. Named `predictor:NAME`, e.g. `predictor:bayesian_ridge`.
public struct PredictorEstimator: PerformanceEstimator {
    public let predictor: String
    private let model: any PerformancePredictor
    private let space: DetectorHeadSpace

    /// Fits `predictor` on the references. `space` must list every head value a trial can take.
    public init(predictor: String, references: [(architecture: DetectorArchitecture, ap50: Double)], space: DetectorHeadSpace,
                seed: UInt64) throws {
        guard var model = PredictorStrategy.model(named: predictor, seed: seed, trainingRows: references.count) else {
            throw EstimatorError.unknownPredictor(predictor, known: PredictorStrategy.names)
        }
        try model.fit(features: PredictorStrategy.features(references.map(\.architecture), space: space),
                      targets: references.map(\.ap50))
        self.predictor = predictor
        self.model = model
        self.space = space
    }

    public static let namePrefix = "predictor:"

    public var name: String { Self.namePrefix + predictor }
    public var isFullFidelity: Bool { false }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        let started = Date()
        let score = try model.predict(PredictorStrategy.features([architecture], space: space))[0]
        return PerformanceEstimate(score: score, ap50: nil, seconds: Date().timeIntervalSince(started), epochs: 0)
    }
}

public enum EstimatorError: Error, Equatable, CustomStringConvertible {
    case unscorable(estimator: String, architecture: String)
    case unknownPredictor(String, known: [String])
    case needsSelection(estimator: String)

    public var description: String {
        switch self {
        case .unscorable(let estimator, let architecture):
            "estimator \(estimator) could not score \(architecture) (its learning curve does not fit)"
        case .unknownPredictor(let name, let known): "unknown predictor '\(name)'; expected one of \(known.joined(separator: ", "))"
        case .needsSelection(let estimator):
            "estimator \(estimator) learns from the two-stage selection's references, and none were trained (selection.references)"
        }
    }
}
