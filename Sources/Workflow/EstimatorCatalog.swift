import DetectionData
import Estimation
import Estimators
import Foundation
import Hardware
import Search
import Torch
import Vision
import ZeroCostProxies

extension DatasetSplits {
    /// Loads the splits a config names, in its format.
    public static func load(_ dataset: ProjectConfig.Dataset) throws -> DatasetSplits {
        let splits = DatasetSplits(train: try dataset.loadSplit(dataset.train, images: dataset.trainImages),
                                   validation: try dataset.loadSplit(dataset.val, images: dataset.valImages))
        guard splits.train.count > 0 else { throw PipelineError.emptySplit(key: "dataset.train", path: dataset.path) }
        guard splits.validation.count > 0 else { throw PipelineError.emptySplit(key: "dataset.val", path: dataset.path) }
        return splits
    }
}

extension TrainingRecipe {
    public init(_ training: ProjectConfig.Training, seed: UInt64) {
        self.init(batchSize: training.batchSize, learningRate: training.learningRate, optimizer: training.optimizer,
                  threads: training.threads, seed: seed, initialization: training.initialization,
                  initializationClasses: training.initializationClasses, freezeBackboneEpochs: training.freezeBackboneEpochs)
    }
}

/// Estimators by the names a config uses: `full`; the short-schedule estimators `short`,
/// `sotl`, `extrapolate`; and every strategy the two-stage selection ranks, by its rank-table
/// name (`val_ap@3ep`, ...), `proxy:NAME` or `predictor:NAME`.
public enum EstimatorCatalog {
    public static let predictorPrefix = PredictorEstimator.namePrefix
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
                                                    deployedPrecision: latency.deployedPrecision, deployedFormat: latency.deployedFormat),
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
            trainReference: { architecture, validatedEpochs, weightsDirectory, log in
                try run.onTrainingMachine {
                    var trainer = run.referenceTrainer
                    trainer.weightsDirectory = weightsDirectory
                    // A reference trains for minutes: a line per epoch with the time left in it.
                    trainer.progress = { step in
                        guard step.iteration + 1 == step.iterationsPerEpoch else { return }
                        log(String(format: "  epoch %d/%d, loss %.4f, about %.0f s left in this reference",
                                   step.epoch + 1, step.epochs, step.terms.total, step.remainingSeconds))
                    }
                    return try trainer.train(architecture, epochs: training.epochs, validatingAfter: validatedEpochs)
                }
            },
            selection: { request in
                try run.onTrainingMachine {
                    let proxies = DetectorProxyScorer(trainingSet: splits.train, batchSize: training.batchSize, seed: seed,
                                                      initialization: run.initialization)
                    return try EstimatorSelection(settings: request.settings).run(
                        architectures: request.references, trainer: TrainedReferenceRuns(request.runs), proxies: proxies,
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
