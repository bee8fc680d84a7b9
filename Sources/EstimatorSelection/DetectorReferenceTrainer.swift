// The real trainer and proxy scorer of the selection: Vision's Trainer on a detection dataset.
import DetectionData
import Foundation
import Torch
import Vision
import ZeroCostProxies

/// Trains detectors with `Trainer` and validates after every epoch (AP@0.5 with
/// `DetectorEvaluation`, and the mean training loss on the validation images).
public struct DetectorReferenceTrainer: ReferenceTrainer {
    public var trainingSet: any DetectionDataset
    public var validationSet: any DetectionDataset
    public var batchSize: Int
    /// Optimizer, learning rate, EMA and seed; `epochs` and the warm-up are set per run.
    public var configuration: TrainingConfiguration
    /// Receives the training's progress (for a progress line).
    public var progress: (TrainingProgress) -> Void

    public init(trainingSet: any DetectionDataset, validationSet: any DetectionDataset, batchSize: Int = 16,
                configuration: TrainingConfiguration = TrainingConfiguration(), progress: @escaping (TrainingProgress) -> Void = { _ in }) {
        self.trainingSet = trainingSet
        self.validationSet = validationSet
        self.batchSize = batchSize
        self.configuration = configuration
        self.progress = progress
    }

    public func train(_ architecture: DetectorArchitecture, epochs: Int) throws -> ReferenceRun {
        try train(architecture, epochs: epochs, stoppingAfter: epochs, validation: .everyEpoch)
    }

    /// The first `stoppingAfter` epochs of an `epochs`-epoch training, recorded as a reference
    /// run is (a learning-curve strategy's view of a full training). Epochs without a
    /// validation pass get NaN AP and validation loss.
    public func train(_ architecture: DetectorArchitecture, epochs: Int, stoppingAfter lastEpoch: Int,
                      validation: LearningCurveStrategy.Validation) throws -> ReferenceRun {
        let size = architecture.inputSizePixels
        let seed = configuration.seed
        let loader = BatchLoader(dataset: trainingSet, batchSize: batchSize,
                                 augmentation: AugmentationConfig(outputWidth: size, outputHeight: size), shuffle: true, seed: seed,
                                 dropLast: trainingSet.count >= 2 * batchSize)
        var configuration = self.configuration
        configuration.epochs = epochs
        // As `edgenas train`: warm up over at most a fifth of the run.
        configuration.warmupIterations = min(configuration.warmupIterations, epochs * loader.batchesPerEpoch / 5)
        Torch.manualSeed(seed)
        let trainer = try Trainer(detector: Detector(architecture), configuration: configuration)

        let recorded = min(epochs, lastEpoch)
        var lossSums = [Double](repeating: 0, count: recorded), ap: [Double] = [], validationLosses: [Double] = []
        var epochSeconds: [Double] = [], evaluationSeconds: [Double] = []
        var epochStart = Date()
        var failure: Error?
        try trainer.train(data: LoaderBatches(loader: loader), stoppingAfter: recorded) { step in
            lossSums[step.epoch] += step.terms.total
            progress(step)
            guard step.iteration + 1 == step.iterationsPerEpoch, failure == nil else { return }
            epochSeconds.append(Date().timeIntervalSince(epochStart))
            let evaluationStart = Date()
            let validates = switch validation {
            case .everyEpoch: true
            case .lastEpoch: step.epoch + 1 == recorded
            case .none: false
            }
            if validates {
                do {
                    ap.append(try DetectorEvaluation.evaluate(trainer.evaluationModel, on: validationSet).averagePrecision50)
                    validationLosses.append(try validationLoss(trainer.evaluationModel, loss: trainer.loss))
                } catch {
                    failure = error
                }
            } else {
                ap.append(.nan)
                validationLosses.append(.nan)
            }
            evaluationSeconds.append(Date().timeIntervalSince(evaluationStart))
            epochStart = Date()
        }
        if let failure { throw failure }
        let perEpoch = Double(loader.batchesPerEpoch)
        return ReferenceRun(
            architecture: architecture.description, trainingLosses: lossSums.map { $0 / perEpoch }, validationAP: ap,
            validationLosses: validationLosses, epochSeconds: epochSeconds, evaluationSeconds: evaluationSeconds,
            parameterCount: trainer.detector.graph.parameterCount, multiplyAccumulates: trainer.detector.graph.multiplyAccumulates)
    }

    /// Mean loss over the validation images, letterboxed, in evaluation mode, without gradients.
    private func validationLoss(_ detector: Detector, loss: DetectionLoss) throws -> Double {
        let size = detector.architecture.inputSizePixels
        let loader = BatchLoader(dataset: validationSet, batchSize: batchSize, augmentation: .evaluation(width: size, height: size),
                                 shuffle: false, seed: 0)
        let wasTraining = detector.isTraining
        detector.eval()
        defer { detector.train(wasTraining) }
        var total = 0.0, images = 0
        for index in 0..<loader.batchesPerEpoch {
            let batch = try loader.batch(epoch: 0, index: index)
            let input = try Tensor(batch.images, shape: [batch.batchSize, 3, size, size])
            let value = try Torch.withNoGrad { try loss(detector.branches(input), targets: batch.objects, inputSize: size).terms.total }
            total += value * Double(batch.batchSize)
            images += batch.batchSize
        }
        return total / Double(max(1, images))
    }
}

/// Scores freshly initialised detectors with the zero-cost proxies on one minibatch of the
/// training set (letterboxed, no augmentation, the same images for every architecture).
public struct DetectorProxyScorer: ProxyScorer {
    public var trainingSet: any DetectionDataset
    public var batchSize: Int
    public var seed: UInt64
    public var proxies: [ZeroCostProxy]

    public init(trainingSet: any DetectionDataset, batchSize: Int = 16, seed: UInt64 = 0, proxies: [ZeroCostProxy] = ZeroCostProxy.allCases) {
        self.trainingSet = trainingSet
        self.batchSize = batchSize
        self.seed = seed
        self.proxies = proxies
    }

    public func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
        let size = architecture.inputSizePixels
        let loader = BatchLoader(dataset: trainingSet, batchSize: batchSize, augmentation: .evaluation(width: size, height: size),
                                 shuffle: true, seed: seed)
        let batch = try loader.batch(epoch: 0, index: 0)
        Torch.manualSeed(seed)
        let network = DetectorProxyNetwork(detector: try Detector(architecture))
        let proxyBatch = ProxyBatch(inputs: try Tensor(batch.images, shape: [batch.batchSize, 3, size, size]), targets: batch.objects,
                                    groups: DetectorProxyNetwork.objectCountGroups(batch.objects))
        return try ZeroCostProxyEvaluator(seed: seed).scores(proxies, network: network, batch: proxyBatch)
    }
}
