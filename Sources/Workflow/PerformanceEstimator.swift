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
        let root = URL(fileURLWithPath: dataset.path)
        let options = DatasetOptions(classFilter: dataset.classes)
        func split(_ name: String, images: String?) throws -> any DetectionDataset {
            switch dataset.format {
            case .voc: return try VOCDataset(root: root, split: name, options: options)
            case .yolo: return try YOLODataset(root: root, split: name, sourceClassNames: dataset.classes, options: options)
            case .coco:
                return try COCODataset(annotationFile: root.appendingPathComponent(name),
                                       imageDirectory: root.appendingPathComponent(images ?? ""), options: options)
            }
        }
        let splits = DatasetSplits(train: try split(dataset.train, images: dataset.trainImages),
                                   validation: try split(dataset.val, images: dataset.valImages))
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

    public init(batchSize: Int = 16, learningRate: Double = 0.01, optimizer: TrainingConfiguration.Optimizer = .adamw,
                threads: Int = 1, seed: UInt64 = 0) {
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.threads = threads
        self.seed = seed
    }

    public init(_ training: ProjectConfig.Training, seed: UInt64) {
        self.init(batchSize: training.batchSize, learningRate: training.learningRate, optimizer: training.optimizer,
                  threads: training.threads, seed: seed)
    }
}

/// The curve of one training run: mean training loss and (optionally) validation AP@0.5 per
/// epoch, plus the final AP@0.5.
public struct TrainingRun: Sendable {
    public var curve: LearningCurve
    public var finalAP50: Double
    public var seconds: Double
}

/// Trains an architecture on the splits from scratch (same seed for every architecture, so
/// differences come from the architecture) and measures AP@0.5 on the validation split.
public struct DetectorTrainingRun: Sendable {
    public var splits: DatasetSplits
    public var recipe: TrainingRecipe

    public init(splits: DatasetSplits, recipe: TrainingRecipe) {
        self.splits = splits
        self.recipe = recipe
    }

    /// Trains `epochs` epochs with the whole learning-rate schedule (warm-up, cosine decay)
    /// fitted to them, so a short run is a complete small training rather than the start of
    /// a long one.
    /// - Parameters:
    ///   - validateEachEpoch: measure AP@0.5 after every epoch (for curve extrapolation).
    ///   - checkpoint: directory to save to after each epoch and resume from (nil: none).
    public func train(
        _ architecture: DetectorArchitecture, epochs: Int, validateEachEpoch: Bool = false,
        checkpoint: URL? = nil, progress: (TrainingProgress) -> Void = { _ in }
    ) throws -> TrainingRun {
        // Training shares the machine lock, so no latency measurement (here or in another
        // EdgeNAS process) runs beside it; the pipeline measures between trainings.
        let machineLock = try MeasurementLock(.training, timeout: 3600)
        defer { machineLock.release() }
        let previousThreads = Torch.threadCount
        Torch.setThreadCount(recipe.threads)
        defer { Torch.setThreadCount(previousThreads) }
        Torch.manualSeed(recipe.seed)
        let started = Date()
        let size = architecture.inputSizePixels
        let loader = BatchLoader(dataset: splits.train, batchSize: recipe.batchSize,
                                 augmentation: AugmentationConfig(outputWidth: size, outputHeight: size), shuffle: true,
                                 seed: recipe.seed, dropLast: splits.train.count >= 2 * recipe.batchSize)
        let configuration = TrainingConfiguration(
            epochs: epochs, optimizer: recipe.optimizer, learningRate: recipe.learningRate,
            warmupIterations: min(100, epochs * loader.batchesPerEpoch / 5), seed: recipe.seed)
        let trainer = try Trainer(detector: Detector(architecture), configuration: configuration, checkpointDirectory: checkpoint)
        var losses: [Double] = [], validation: [Double] = []
        var lossSum = 0.0, iterations = 0
        var evaluationError: (any Error)?
        try trainer.train(data: LoaderBatches(loader: loader), resume: checkpoint != nil) { step in
            lossSum += step.terms.total
            iterations += 1
            progress(step)
            guard step.iteration + 1 == step.iterationsPerEpoch else { return }
            losses.append(lossSum / Double(iterations))
            lossSum = 0
            iterations = 0
            // The moving average was updated before this call, so it is the epoch's model.
            if validateEachEpoch, evaluationError == nil {
                do {
                    validation.append(try DetectorEvaluation.evaluate(trainer.evaluationModel, on: splits.validation).averagePrecision50)
                } catch {
                    evaluationError = error
                }
            }
        }
        if let evaluationError { throw evaluationError }
        let final = validation.count == epochs
            ? validation.last! : try DetectorEvaluation.evaluate(trainer.evaluationModel, on: splits.validation).averagePrecision50
        return TrainingRun(curve: LearningCurve(trainingLosses: losses, validationMetric: validation), finalAP50: final,
                           seconds: Date().timeIntervalSince(started))
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

/// Estimators by the names a config uses.
public enum EstimatorCatalog {
    public static let names = ["full"] + ShortTrainingEstimator.Rule.allCases.map(\.rawValue)
        + ZeroCostProxy.allCases.map { ZeroCostProxyEstimator.namePrefix + $0.rawValue }

    /// What each name means, for `edgenas init` and error messages.
    public static func summary(_ name: String, training: ProjectConfig.Training) -> String {
        switch name {
        case "full": "full training, \(training.epochs) epochs"
        case "short": "AP@0.5 after a \(training.shortEpochs)-epoch training"
        case "sotl": "sum of training losses over a \(training.shortEpochs)-epoch training"
        case "extrapolate": "AP@0.5 curve of a \(training.shortEpochs)-epoch training extrapolated to \(training.epochs) epochs"
        case _ where name.hasPrefix(ZeroCostProxyEstimator.namePrefix):
            "zero-cost proxy \(name.dropFirst(ZeroCostProxyEstimator.namePrefix.count)) at initialisation, no training"
        default: name
        }
    }

    public static func make(_ name: String, run: DetectorTrainingRun, training: ProjectConfig.Training) throws -> any PerformanceEstimator {
        if name == "full" { return FullTrainingEstimator(run: run, epochs: training.epochs) }
        if name.hasPrefix(ZeroCostProxyEstimator.namePrefix),
           let proxy = ZeroCostProxy(rawValue: String(name.dropFirst(ZeroCostProxyEstimator.namePrefix.count))) {
            return ZeroCostProxyEstimator(proxy: proxy, trainingSet: run.splits.train, batchSize: run.recipe.batchSize, seed: run.recipe.seed)
        }
        guard let rule = ShortTrainingEstimator.Rule(rawValue: name) else {
            throw ProjectConfigError.invalidValue(key: "estimator", expected: "one of auto, \(names.joined(separator: ", "))", found: "'\(name)'")
        }
        return ShortTrainingEstimator(run: run, epochs: training.shortEpochs, fullEpochs: training.epochs, rule: rule)
    }
}

extension PipelineComponents {
    /// The real components of a config: its latency backend, training-based estimators on its
    /// dataset, and full training for the retraining of candidates.
    public static func standard(config: ProjectConfig, splits: DatasetSplits) throws -> PipelineComponents {
        let run = DetectorTrainingRun(splits: splits, recipe: TrainingRecipe(config.training, seed: config.seed))
        let training = config.training
        return PipelineComponents(
            latency: try LatencyBackendFactory.make(spec: config.latency.backend, threads: config.latency.threads, seed: config.seed),
            estimator: { name in try EstimatorCatalog.make(name, run: run, training: training) },
            fullTrainingSeconds: { architecture in
                // One epoch, timed, stands for each of the full training's epochs.
                try run.train(architecture, epochs: 1).seconds * Double(training.epochs)
            },
            retrain: { architecture, checkpoint in
                let result = try run.train(architecture, epochs: training.epochs, checkpoint: checkpoint)
                return PerformanceEstimate(score: result.finalAP50, ap50: result.finalAP50, seconds: result.seconds, epochs: training.epochs)
            })
    }
}
