// The real trainer and proxy scorer of the selection: Vision's Trainer on a detection dataset.
import DetectionData
import Foundation
import Torch
import Vision
import ZeroCostProxies

/// Trains detectors with `Trainer` and validates after the epochs a run asks for (AP@0.5 with
/// `DetectorEvaluation`, and the mean training loss on the validation images).
public struct DetectorReferenceTrainer: ReferenceTrainer {
    public var trainingSet: any DetectionDataset
    public var validationSet: any DetectionDataset
    public var batchSize: Int
    /// Optimizer, learning rate, EMA and seed; `epochs` and the warm-up are set per run.
    public var configuration: TrainingConfiguration
    /// Receives the training's progress (for a progress line).
    public var progress: (TrainingProgress) -> Void
    /// Pretrained weights every run starts from (nil: from scratch).
    public var initialization: DetectorInitialization?

    public init(trainingSet: any DetectionDataset, validationSet: any DetectionDataset, batchSize: Int = 16,
                configuration: TrainingConfiguration = TrainingConfiguration(), initialization: DetectorInitialization? = nil,
                progress: @escaping (TrainingProgress) -> Void = { _ in }) {
        self.trainingSet = trainingSet
        self.validationSet = validationSet
        self.batchSize = batchSize
        self.configuration = configuration
        self.initialization = initialization
        self.progress = progress
    }

    /// Where full runs keep their final (deployed) weights as `<architecture>.tensors` (nil:
    /// nowhere), so a reference that ends on the Pareto front can be quantized without
    /// training it again.
    public var weightsDirectory: URL?

    /// The weights a full run of `architecture` left in `weightsDirectory`.
    public static func weightsFile(_ architecture: DetectorArchitecture, in directory: URL) -> URL {
        directory.appendingPathComponent("\(architecture.description).tensors")
    }

    public func train(_ architecture: DetectorArchitecture, epochs: Int, validatingAfter validatedEpochs: Set<Int>) throws -> ReferenceRun {
        try train(architecture, epochs: epochs, stoppingAfter: epochs, validatingAfter: validatedEpochs)
    }

    /// The first `stoppingAfter` epochs of an `epochs`-epoch training, recorded as a reference
    /// run is (a learning-curve strategy's view of a full training). Epochs without a
    /// validation pass get NaN AP and validation loss.
    /// - Parameters:
    ///   - validatedEpochs: the epochs validated after (0: the starting network, when it is
    ///     inherited; nothing to measure for random weights).
    ///   - measuringValidationLoss: also take the validation loss on validated epochs, a second
    ///     pass over the validation split; without it the validation losses are NaN.
    ///   - checkpoint: directory to save to after each epoch and to resume from (nil: none).
    ///     Epochs a checkpoint had already finished are not trained again and not observed:
    ///     their training loss, AP, validation loss and seconds are NaN. The last epoch is still
    ///     validated when `validation` asks for it, on the checkpoint's weights.
    ///   - afterValidation: called with (epochs trained, AP@0.5) after each validation pass,
    ///     the starting network's included (0 epochs); an error it throws (a pruner's stop)
    ///     ends the training there and is rethrown.
    public func train(_ architecture: DetectorArchitecture, epochs: Int, stoppingAfter lastEpoch: Int,
                      validatingAfter validatedEpochs: Set<Int>, measuringValidationLoss: Bool = true,
                      checkpoint: URL? = nil, afterValidation: EpochReport? = nil) throws -> ReferenceRun {
        let seed = configuration.seed
        let loader = BatchLoader(dataset: trainingSet, batchSize: batchSize,
                                 augmentation: AugmentationConfig(trainingAt: architecture),
                                 shuffle: true, seed: seed,
                                 dropLast: trainingSet.count >= 2 * batchSize)
        var configuration = self.configuration
        configuration.epochs = epochs
        // As `edgenas train`: warm up over at most a fifth of the run.
        configuration.warmupIterations = min(configuration.warmupIterations, epochs * loader.batchesPerEpoch / 5)
        let recorded = min(epochs, lastEpoch)
        let started = Date()
        let (detector, inheritance) = try Torch.seeded(seed) { () throws -> (Detector, InheritanceReport?) in
            if let initialization { return try initialization.makeDetector(architecture, recalibratingOn: trainingSet) }
            return (try Detector(architecture), nil)
        }
        var initialAP: Double?, initialSeconds: Double?
        if inheritance != nil, validatedEpochs.contains(0) {
            let ap = try DetectorEvaluation.evaluate(detector, on: validationSet).averagePrecision50
            initialAP = ap
            initialSeconds = Date().timeIntervalSince(started)
            try afterValidation?(0, ap)
        }
        let trainer = try Trainer(detector: detector, configuration: configuration, checkpointDirectory: checkpoint)

        // Indexed by epoch, so that a resumed run's epochs keep their numbers.
        let unobserved = [Double](repeating: .nan, count: recorded)
        var trainingLosses = unobserved, ap = unobserved, validationLosses = unobserved
        var epochSeconds = unobserved, evaluationSeconds = unobserved
        func validate(epoch: Int) throws {
            let started = Date()
            // The moving average is updated before the epoch's last progress call, so it is the epoch's model.
            ap[epoch] = try DetectorEvaluation.evaluate(trainer.evaluationModel, on: validationSet).averagePrecision50
            if measuringValidationLoss {
                validationLosses[epoch] = try validationLoss(trainer.evaluationModel, loss: trainer.loss)
            }
            evaluationSeconds[epoch] = Date().timeIntervalSince(started)
            try afterValidation?(epoch + 1, ap[epoch])
        }
        func validates(epoch: Int) -> Bool { validatedEpochs.contains(epoch + 1) }

        var lossSum = 0.0
        var epochStart = Date()
        try trainer.train(data: LoaderBatches(loader: loader), resume: checkpoint != nil, stoppingAfter: recorded) { step in
            lossSum += step.terms.total
            progress(step)
            guard step.iteration + 1 == step.iterationsPerEpoch else { return }
            trainingLosses[step.epoch] = lossSum / Double(step.iterationsPerEpoch)
            lossSum = 0
            epochSeconds[step.epoch] = Date().timeIntervalSince(epochStart)
            evaluationSeconds[step.epoch] = 0
            if validates(epoch: step.epoch) { try validate(epoch: step.epoch) }
            epochStart = Date()
        }
        // A checkpoint that had finished the last epoch left no epoch end to validate at.
        if recorded > 0, epochSeconds[recorded - 1].isNaN, validates(epoch: recorded - 1) {
            try validate(epoch: recorded - 1)
        }
        if let weightsDirectory, recorded == epochs {
            try FileManager.default.createDirectory(at: weightsDirectory, withIntermediateDirectories: true)
            try trainer.evaluationModel.save(to: Self.weightsFile(architecture, in: weightsDirectory))
        }
        return ReferenceRun(
            architecture: architecture.description, trainingLosses: trainingLosses, validationAP: ap,
            validationLosses: validationLosses, epochSeconds: epochSeconds, evaluationSeconds: evaluationSeconds,
            parameterCount: trainer.detector.graph.parameterCount, multiplyAccumulates: trainer.detector.graph.multiplyAccumulates,
            initialAP: initialAP, initialSeconds: initialSeconds, inheritedShare: inheritance?.inheritedShare)
    }

    /// Mean loss over the validation images, letterboxed, in evaluation mode, without gradients.
    private func validationLoss(_ detector: Detector, loss: DetectionLoss) throws -> Double {
        let architecture = detector.architecture
        let loader = BatchLoader(dataset: validationSet, batchSize: batchSize,
                                 augmentation: .evaluation(at: architecture), shuffle: false, seed: 0)
        let wasTraining = detector.isTraining
        detector.eval()
        defer { detector.train(wasTraining) }
        var total = 0.0, images = 0
        for index in 0..<loader.batchesPerEpoch {
            let batch = try loader.batch(epoch: 0, index: index)
            let input = try Tensor(batch.images, shape: architecture.inputShape(batch: batch.batchSize))
            let value = try Torch.withNoGrad { try loss(detector.branches(input), targets: batch.objects).terms.total }
            total += value * Double(batch.batchSize)
            images += batch.batchSize
        }
        return total / Double(max(1, images))
    }
}

/// Scores detectors at their initialisation (random, or inherited from pretrained weights) with
/// the zero-cost proxies on one minibatch of the training set (letterboxed, no augmentation, the
/// same images for every architecture).
public struct DetectorProxyScorer: ProxyScorer {
    public var trainingSet: any DetectionDataset
    public var batchSize: Int
    public var seed: UInt64
    public var proxies: [ZeroCostProxy]
    /// Pretrained weights the scored networks inherit (nil: scored at their random initialisation).
    public var initialization: DetectorInitialization?

    public init(trainingSet: any DetectionDataset, batchSize: Int = 16, seed: UInt64 = 0, proxies: [ZeroCostProxy] = ZeroCostProxy.allCases,
                initialization: DetectorInitialization? = nil) {
        self.trainingSet = trainingSet
        self.batchSize = batchSize
        self.seed = seed
        self.proxies = proxies
        self.initialization = initialization
    }

    public func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore] {
        let loader = BatchLoader(dataset: trainingSet, batchSize: batchSize,
                                 augmentation: .evaluation(at: architecture), shuffle: true, seed: seed)
        let batch = try loader.batch(epoch: 0, index: 0)
        let detector = try Torch.seeded(seed) {
            try initialization?.makeDetector(architecture, recalibratingOn: trainingSet).detector ?? Detector(architecture)
        }
        let network = DetectorProxyNetwork(detector: detector)
        let proxyBatch = ProxyBatch(inputs: try Tensor(batch.images, shape: architecture.inputShape(batch: batch.batchSize)), targets: batch.objects,
                                    groups: DetectorProxyNetwork.objectCountGroups(batch.objects))
        return try ZeroCostProxyEvaluator(seed: seed).scores(proxies, network: network, batch: proxyBatch)
    }
}
