import DetectionData
import Foundation
import Torch
import Vision

/// `edgenas demo`'s project: synthetic person images made on the spot, a base model trained on
/// them once (the demo's stand-in for published weights, which it may not download) and then
/// trained as a supernet of the search space, and a config whose whole pipeline (profile, plan,
/// two-stage selection, search, retraining, report) fine-tunes every network from that
/// supernet, as a practitioner starts from FastestDet's weights; all of it takes 14-15 minutes on
/// 2 idle cores (docs/experiments.md, "The demo's running time"). Tests run the same project at a
/// smaller scale.
public struct DemoProject: Sendable {
    /// Training images of the search (the first of the base model's training images).
    public var trainImages = 96
    /// Training images of the base model (it stands for weights pretrained on a large dataset).
    public var baseTrainImages = 400
    /// Validation images: every AP@0.5 of the demo (references, trials, retraining) is scored on
    /// them, so more of them make the selection's ranking less noisy, at a few seconds each.
    public var validationImages = 48
    /// Trials of the search: 12 rarely drew a full head at 256 or 288 px from the 320
    /// architectures, the networks that keep the baseline's AP (docs/experiments.md).
    public var trials = 20
    /// The search phase's budget; too small for full training of every trial, so `auto` plans.
    public var searchHours = 0.05
    /// Epochs of the base model's training from scratch (once), multi-scale over the search
    /// space's input widths, so that every width a search tries starts from weights that work
    /// there (trained at 320 px alone, the base model kept 0.49 of its 0.69 AP@0.5 at 224 px).
    public var baseEpochs = 30
    /// Epochs of the base model's training as a supernet of the search space (once; every
    /// trial inherits from it); 0 leaves the base model as it is.
    public var supernetEpochs = 4
    /// Epochs of a full fine-tuning.
    public var epochs = 6
    /// Peak rate of the fine-tuning: above the fine-tuning default (0.0003, set for published
    /// weights and another dataset), since the base model learnt this very data and 6 epochs must
    /// let a changed head recover (docs/experiments.md compares the two).
    public var learningRate = 0.001
    public var shortEpochs = 2
    /// Fully trained references of the selection (the baseline among them).
    public var references = 8
    public var retrainCandidates = 4
    public var batchSize = 16
    public var bootstrapResamples = 1000
    public var seed: UInt64
    public var threads: Int

    public init(seed: UInt64 = 0, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.seed = seed
        self.threads = threads
    }

    /// Writes the data (unless a previous run left it) and the config into `directory`;
    /// returns the config's path.
    public func prepare(in directory: URL, log: (String) -> Void = { _ in }) throws -> URL {
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: data.appendingPathComponent("ImageSets/Main/val.txt").path) {
            var synthetic = SyntheticDataConfig()
            synthetic.imageWidth = 256
            synthetic.imageHeight = 256
            synthetic.figureHeight = 48...160
            synthetic.figuresPerImage = 1...3
            let summary = try SyntheticDataWriter(config: synthetic).write(
                to: data, seed: seed, trainCount: max(baseTrainImages, trainImages), valCount: validationImages)
            // The search's split: the first of the base model's training images.
            let ids = try String(contentsOf: data.appendingPathComponent("ImageSets/Main/train.txt"), encoding: .utf8)
                .split(separator: "\n").prefix(trainImages)
            try (ids.joined(separator: "\n") + "\n").write(to: data.appendingPathComponent("ImageSets/Main/\(Self.searchSplit).txt"),
                                                          atomically: true, encoding: .utf8)
            log("demo: wrote \(summary.trainImages) training (\(trainImages) for the search) and \(summary.valImages) validation images "
                + "to \(data.path)")
        }
        let baseModel = directory.appendingPathComponent(Self.baseModelDirectory)
        try trainBaseModel(data: data, into: baseModel, log: log)
        if supernetEpochs > 0 {
            try trainSupernet(data: data, from: baseModel, into: directory.appendingPathComponent(Self.supernetDirectory), log: log)
        }
        let config = directory.appendingPathComponent("edgenas.yaml")
        try configText.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Where the base model's checkpoint goes, beside the data.
    public static let baseModelDirectory = "base-model"
    /// Where the base model trained as a supernet goes.
    public static let supernetDirectory = "supernet"
    /// The checkpoint every network of the search inherits from.
    var initDirectory: String { supernetEpochs > 0 ? Self.supernetDirectory : Self.baseModelDirectory }
    /// The training split the search fine-tunes on.
    public static let searchSplit = "search"

    /// Trains the baseline architecture from scratch on the training split (resuming an
    /// interrupted run; nothing when a finished one is there) and logs each epoch and its AP@0.5.
    func trainBaseModel(data: URL, into directory: URL, log: (String) -> Void) throws {
        if let done = try TrainingCheckpoint.load(from: directory), done.completedEpochs >= baseEpochs { return }
        let train = try VOCDataset(root: data, split: "train"), validation = try VOCDataset(root: data, split: "val")
        let architecture = DetectorArchitecture.baseline
        let loader = BatchLoader(dataset: train, batchSize: batchSize, augmentation: AugmentationConfig(trainingAt: architecture), shuffle: true, seed: seed,
            dropLast: train.count >= 2 * batchSize)
        let widths = try ArchitectureSpace.subnetworkSampling(ArchitectureSpace.defaultSpace, base: architecture).inputWidths
        let configuration = TrainingConfiguration(epochs: baseEpochs, warmupIterations: min(100, baseEpochs * loader.batchesPerEpoch / 5), seed: seed,
                                                  multiScaleWidths: widths)
        let trainer = try Trainer(detector: Torch.seeded(seed) { try Detector(architecture) }, configuration: configuration,
                                  checkpointDirectory: directory)
        log("demo: training the base model \(architecture) from scratch, \(baseEpochs) epochs, each step at one of the widths "
            + widths.map(String.init).joined(separator: "/"))
        try run(trainer, on: loader, validation: validation, stage: "base model", log: log)
    }

    /// Runs `trainer` on the demo's threads (resuming where a stopped run left), logging each
    /// epoch and then AP@0.5 on the validation split.
    private func run(_ trainer: Trainer, on loader: BatchLoader, validation: VOCDataset, stage: String, log: (String) -> Void) throws {
        let previousThreads = Torch.threadCount
        Torch.setThreadCount(threads)
        defer { Torch.setThreadCount(previousThreads) }
        try trainer.train(data: LoaderBatches(loader: loader), resume: true) { step in
            guard step.iteration + 1 == step.iterationsPerEpoch else { return }
            log(String(format: "demo: %@ epoch %d/%d, loss %.3f, %.0f s left", stage, step.epoch + 1, step.epochs, step.terms.total,
                       step.remainingSeconds))
        }
        let result = try DetectorEvaluation.evaluate(trainer.evaluationModel, on: validation)
        log(String(format: "demo: %@ AP@0.5 %.3f on the validation split", stage, result.averagePrecision50))
    }

    /// Trains the base model as a supernet of the search space (`SubnetworkSampling`), so that
    /// the search's networks inherit working weights, not only the baseline (resuming an
    /// interrupted run; nothing when a finished one is there).
    func trainSupernet(data: URL, from baseModel: URL, into directory: URL, log: (String) -> Void) throws {
        if let done = try TrainingCheckpoint.load(from: directory), done.completedEpochs >= supernetEpochs { return }
        let train = try VOCDataset(root: data, split: "train"), validation = try VOCDataset(root: data, split: "val")
        let initialization = try DetectorInitialization(path: baseModel.path, classNames: ["person"])
        let architecture = initialization.sourceArchitecture
        let loader = BatchLoader(dataset: train, batchSize: batchSize, augmentation: AugmentationConfig(trainingAt: architecture), shuffle: true, seed: seed &+ 1,
            dropLast: train.count >= 2 * batchSize)
        var configuration = TrainingConfiguration.defaults(fineTuning: true, epochs: supernetEpochs, seed: seed)
        configuration.learningRate = learningRate
        configuration.warmupIterations = min(configuration.warmupIterations, supernetEpochs * loader.batchesPerEpoch / 5)
        let (detector, _) = try initialization.makeDetector(architecture, recalibratingOn: nil)
        let subnetworks = try ArchitectureSpace.subnetworkSampling(ArchitectureSpace.defaultSpace, base: architecture)
        let trainer = try Trainer(detector: detector, configuration: configuration, checkpointDirectory: directory, subnetworks: subnetworks)
        log("demo: training the base model as a supernet of the head space, \(supernetEpochs) epochs (each step also trains "
            + "\(subnetworks.smallest) and \(subnetworks.randomPerStep) random members; every search network inherits from it)")
        try run(trainer, on: loader, validation: validation, stage: "supernet", log: log)
    }

    public var configText: String {
        """
        # Written by 'edgenas demo': the whole pipeline at small scale on synthetic data.
        name: demo
        dataset: {format: voc, path: data, train: \(Self.searchSplit), val: val, classes: [person]}
        base_model: k5-g1-c96-w320
        search_space: default
        objectives: [ap50, latency]
        budget: {trials: \(trials), hours: \(searchHours)}
        estimator: auto
        selection: {references: \(references), resamples: \(bootstrapResamples)}
        sampler: auto
        latency: {backend: int8, threads: 1}
        storage: sqlite://study.db
        seed: \(seed)
        training: {init: \(initDirectory), epochs: \(epochs), short_epochs: \(shortEpochs), batch_size: \(batchSize), learning_rate: \(learningRate), optimizer: adamw, threads: \(threads)}
        retrain: {candidates: \(retrainCandidates)}
        output: report

        """
    }
}
