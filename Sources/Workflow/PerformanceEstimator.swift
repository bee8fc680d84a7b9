import DetectionData
import Estimation
import EstimatorSelection
import Foundation
import Hardware
import Search
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

/// Estimates how good an architecture is, cheaply or fully. Full training, short training
/// with a learning-curve rule, zero-cost proxies and predictors all plug in here.
public protocol PerformanceEstimator: Sendable {
    /// A stable name stored with each trial, e.g. "full" or "short".
    var name: String { get }
    /// Whether `score` is the final AP@0.5 of a full training, so the search's front needs no
    /// retraining.
    var isFullFidelity: Bool { get }
    func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate
}

/// The training and validation splits of a project's dataset.
public struct DatasetSplits: Sendable {
    public var train: any DetectionDataset
    public var validation: any DetectionDataset

    public init(train: any DetectionDataset, validation: any DetectionDataset) {
        self.train = train
        self.validation = validation
    }

    /// Loads the splits a config names, in its format.
    public static func load(_ dataset: ProjectConfig.Dataset) throws -> DatasetSplits {
        let splits = DatasetSplits(train: try dataset.loadSplit(dataset.train, images: dataset.trainImages),
                                   validation: try dataset.loadSplit(dataset.val, images: dataset.valImages))
        guard splits.train.count > 0 else { throw PipelineError.emptySplit(key: "dataset.train", path: dataset.path) }
        guard splits.validation.count > 0 else { throw PipelineError.emptySplit(key: "dataset.val", path: dataset.path) }
        return splits
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

    public init(_ training: ProjectConfig.Training, seed: UInt64) {
        self.init(batchSize: training.batchSize, learningRate: training.learningRate, optimizer: training.optimizer,
                  threads: training.threads, seed: seed, initialization: training.initialization,
                  initializationClasses: training.initializationClasses, freezeBackboneEpochs: training.freezeBackboneEpochs)
    }

    /// One training's schedule: from scratch, or fine-tuning (short warm-up) when the recipe
    /// starts from pretrained weights; the warm-up is capped later at a fifth of the run.
    var configuration: TrainingConfiguration {
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
    public func train(
        _ architecture: DetectorArchitecture, epochs: Int, validateEachEpoch: Bool = false,
        checkpoint: URL? = nil, progress: @escaping (TrainingProgress) -> Void = { _ in }
    ) throws -> TrainingRun {
        var trainer = referenceTrainer
        trainer.progress = progress
        return try onTrainingMachine {
            let started = Date()
            // Without the validation loss: no estimator built on a `TrainingRun` reads it, and it
            // would cost a second pass over the validation split after every validated epoch.
            let run = try trainer.train(architecture, epochs: epochs, stoppingAfter: epochs,
                                        validation: validateEachEpoch ? .everyEpoch : .lastEpoch,
                                        measuringValidationLoss: false, checkpoint: checkpoint)
            return TrainingRun(curve: LearningCurve(trainingLosses: run.trainingLosses,
                                                    validationMetric: validateEachEpoch ? run.validationAP : []),
                               finalAP50: run.finalAP, seconds: Date().timeIntervalSince(started))
        }
    }

    /// AP@0.5 on the validation split of `weights` (saved by a training of `architecture`)
    /// after INT8 post-training quantization, calibrated on `calibrationImages` training images
    /// as `edgenas quantize` does; nil when this libtorch has no quantized engine.
    public func int8AP50(_ architecture: DetectorArchitecture, weights: URL, calibrationImages: Int = 32) throws -> Double? {
        guard let engine = QuantizedDetector.defaultEngine else { return nil }
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

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
        let result = try run.train(architecture, epochs: epochs)
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

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
        let result = try run.train(architecture, epochs: epochs, validateEachEpoch: rule == .extrapolate)
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

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
        let record = try run.onTrainingMachine {
            try run.referenceTrainer.train(architecture, epochs: strategy.fullEpochs, stoppingAfter: strategy.epochs,
                                           validation: strategy.validation)
        }
        let score = strategy.score(record)
        guard score.isFinite else { throw EstimatorError.unscorable(estimator: name, architecture: architecture.description) }
        let ap = (strategy.epochs == 0 ? record.initialAP : record.validationAP.last).flatMap { $0.isFinite ? $0 : nil }
        return PerformanceEstimate(score: score, ap50: ap, seconds: strategy.cost(record), epochs: strategy.epochs)
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

    public var name: String { EstimatorCatalog.predictorPrefix + predictor }
    public var isFullFidelity: Bool { false }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int) throws -> PerformanceEstimate {
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

/// Estimators by the names a config uses: `full`; the short-schedule estimators `short`,
/// `sotl`, `extrapolate`; and every strategy the two-stage selection ranks, by its rank-table
/// name (`val_ap@3ep`, ...), `proxy:NAME` or `predictor:NAME`.
public enum EstimatorCatalog {
    public static let predictorPrefix = "predictor:"
    static let shortScheduleNames = ShortTrainingEstimator.Rule.allCases.map(\.rawValue)

    public static func isKnown(_ name: String, training: ProjectConfig.Training) -> Bool {
        name == "full" || shortScheduleNames.contains(name) || proxy(name) != nil
            || LearningCurveStrategy(name: name, fullEpochs: training.epochs) != nil
            || (name.hasPrefix(predictorPrefix) && PredictorStrategy.names.contains(String(name.dropFirst(predictorPrefix.count))))
    }

    /// What a config may name, for its error message.
    public static func expected(training: ProjectConfig.Training) -> String {
        "auto, select, full, \(shortScheduleNames.joined(separator: ", ")), "
            + "proxy:NAME (\(ZeroCostProxy.allCases.map(\.rawValue).joined(separator: ", "))), "
            + "RULE@Eep (\(LearningCurveStrategy.Rule.allCases.map(\.rawValue).joined(separator: ", ")); E in 1...\(training.epochs - 1)), "
            + "or predictor:NAME (\(PredictorStrategy.names.joined(separator: ", ")))"
    }

    /// The search estimator that runs a rank-table strategy, or nil for a name the table cannot hold.
    public static func name(ofStrategy strategy: String, fullEpochs: Int) -> String? {
        switch StrategyReference(name: strategy, fullEpochs: fullEpochs) {
        case .learningCurve(let curve): curve.name
        case .predictor(let predictor): predictorPrefix + predictor
        case .proxy(let proxy): ZeroCostProxyEstimator.namePrefix + proxy.rawValue
        case nil: nil
        }
    }

    /// Whether the estimator learns from the selection's references.
    public static func needsReferences(_ name: String) -> Bool { name.hasPrefix(predictorPrefix) }

    /// What each name means, for logs and the report.
    public static func summary(_ name: String, training: ProjectConfig.Training) -> String {
        switch name {
        case "full": return "full training, \(training.epochs) epochs"
        case "short": return "AP@0.5 after a \(training.shortEpochs)-epoch training"
        case "sotl": return "sum of training losses over a \(training.shortEpochs)-epoch training"
        case "extrapolate": return "AP@0.5 curve of a \(training.shortEpochs)-epoch training extrapolated to \(training.epochs) epochs"
        default:
            if let proxy = proxy(name) { return "zero-cost proxy \(proxy.rawValue) at initialisation, no training" }
            if name.hasPrefix(predictorPrefix) {
                return "predictor \(name.dropFirst(predictorPrefix.count)) fitted on the fully trained references, no training"
            }
            if let curve = LearningCurveStrategy(name: name, fullEpochs: training.epochs) {
                return "\(curve.rule.rawValue) after the first \(curve.epochs) of \(training.epochs) epochs"
            }
            return name
        }
    }

    /// - Parameters:
    ///   - selection: the two-stage selection, whose fully trained references a `predictor:NAME` learns from.
    ///   - headValues: the head values the search's trials can take (the predictor's encoding must list them).
    public static func make(_ name: String, run: DetectorTrainingRun, training: ProjectConfig.Training,
                            selection: EstimatorSelectionSummary? = nil, headValues: DetectorHeadSpace? = nil) throws -> any PerformanceEstimator {
        if name == "full" { return FullTrainingEstimator(run: run, epochs: training.epochs) }
        if let proxy = proxy(name) {
            return ZeroCostProxyEstimator(proxy: proxy, trainingSet: run.splits.train, batchSize: run.recipe.batchSize, seed: run.recipe.seed,
                                          initialization: run.initialization)
        }
        if let curve = LearningCurveStrategy(name: name, fullEpochs: training.epochs) {
            return LearningCurveStrategyEstimator(strategy: curve, run: run)
        }
        if name.hasPrefix(predictorPrefix) {
            guard let selection, !selection.references.isEmpty else { throw EstimatorError.needsSelection(estimator: name) }
            let trained = try selection.references.map { (architecture: try DetectorArchitecture(shortName: $0.architecture), ap50: $0.ap50) }
            var headSpace = DetectorHeadSpace(spanning: trained.map(\.architecture))
            if let headValues { headSpace.formUnion(headValues) }
            return try PredictorEstimator(predictor: String(name.dropFirst(predictorPrefix.count)), references: trained,
                                          space: headSpace, seed: run.recipe.seed)
        }
        guard let rule = ShortTrainingEstimator.Rule(rawValue: name) else {
            throw ProjectConfigError.invalidValue(key: "estimator", expected: expected(training: training), found: "'\(name)'")
        }
        return ShortTrainingEstimator(run: run, epochs: training.shortEpochs, fullEpochs: training.epochs, rule: rule)
    }

    private static func proxy(_ name: String) -> ZeroCostProxy? {
        name.hasPrefix(ZeroCostProxyEstimator.namePrefix)
            ? ZeroCostProxy(rawValue: String(name.dropFirst(ZeroCostProxyEstimator.namePrefix.count))) : nil
    }
}

extension PipelineComponents {
    /// The real components of a config: its latency backend and profiler, training-based
    /// estimators on its dataset, the two-stage selection with the same training recipe, and
    /// full training for the retraining of candidates.
    public static func standard(config: ProjectConfig, splits: DatasetSplits) throws -> PipelineComponents {
        let run = try DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(config.training, seed: config.seed))
        let training = config.training, latency = config.latency, seed = config.seed
        let headValues = headValues(of: config.searchSpace, base: config.baseModel)
        return PipelineComponents(
            latency: try LatencyBackendFactory.make(spec: latency.backend, threads: latency.threads, seed: seed,
                                                    deployedPrecision: latency.deployedPrecision),
            profile: { architecture in
                LayerProfileSummary(try LatencyBackendFactory.profile(architecture, spec: latency.backend, threads: latency.threads, seed: seed))
            },
            estimator: { name, selection in
                try EstimatorCatalog.make(name, run: run, training: training, selection: selection, headValues: headValues)
            },
            fullTrainingSeconds: { architecture in
                // One epoch, timed, stands for each of the full training's epochs.
                try run.train(architecture, epochs: 1).seconds * Double(training.epochs)
            },
            selection: { request in
                try run.onTrainingMachine {
                    let proxies = DetectorProxyScorer(trainingSet: splits.train, batchSize: training.batchSize, seed: seed,
                                                      initialization: run.initialization)
                    var trainer = run.referenceTrainer
                    trainer.weightsDirectory = request.weightsDirectory
                    // A reference trains for minutes: a line per epoch with the time left in it.
                    trainer.progress = { step in
                        guard step.iteration + 1 == step.iterationsPerEpoch else { return }
                        request.log(String(format: "select:   epoch %d/%d, loss %.4f, about %.0f s left in this reference",
                                           step.epoch + 1, step.epochs, step.terms.total, step.remainingSeconds))
                    }
                    return try EstimatorSelection(settings: request.settings).run(
                        architectures: request.references, trainer: trainer, proxies: proxies,
                        cache: SelectionCache(directory: request.cacheDirectory), log: request.log)
                }
            },
            retrain: { architecture, checkpoint in
                let result = try run.train(architecture, epochs: training.epochs, checkpoint: checkpoint)
                return PerformanceEstimate(score: result.finalAP50, ap50: result.finalAP50, seconds: result.seconds, epochs: training.epochs)
            },
            quantizedAP: { architecture, weights in try run.int8AP50(architecture, weights: weights) })
    }

    /// The head values the space's trials can take (the base model's where a field is not searched).
    static func headValues(of space: SearchSpace, base: DetectorArchitecture) -> DetectorHeadSpace {
        func values(_ parameter: ArchitectureSpace.Parameter) -> [Int] {
            let listed = space[parameter.rawValue]?.distribution.allValues?.compactMap { $0.numericValue.map { Int($0) } }
            return listed ?? [parameter.value(in: base)]
        }
        return DetectorHeadSpace(kernelSizes: values(.kernel), groups: values(.groups), channels: values(.channels), inputWidths: values(.width))
    }
}
