import DetectionData
import Foundation
import Randomness
import Torch

/// How a detector is trained. Defaults suit the FastestDet family at small scale.
public struct TrainingConfiguration: Codable, Hashable, Sendable {
    public enum Optimizer: String, Codable, Hashable, Sendable { case sgd, adamw }

    public var epochs: Int
    public var optimizer: Optimizer
    /// Peak learning rate, reached at the end of warm-up.
    public var learningRate: Double
    /// SGD momentum (Nesterov) or AdamW's beta1.
    public var momentum: Double
    public var weightDecay: Double
    /// Iterations of linear warm-up from 10 % of the peak learning rate.
    public var warmupIterations: Int
    /// The cosine schedule ends at this fraction of the peak learning rate.
    public var finalLearningRateFraction: Double
    /// Decay of the exponential moving average of the weights (nil: no EMA). Evaluation and
    /// the saved model use the averaged weights, which are steadier than the last step's.
    public var emaDecay: Double?
    public var seed: UInt64
    /// Epochs at the start in which the backbone (stem and stages) is frozen: its weights are
    /// not trained and its batch norms keep their statistics, so a fine-tuned detector's new or
    /// changed head learns before its gradients reach pretrained features.
    public var freezeBackboneEpochs: Int
    /// Multi-scale training, as YOLO detectors are trained: each step runs the network at one
    /// of these input widths (its aspect ratio kept), drawn from the seed and the step, so that
    /// the weights work at every width a search gives its networks. Trained at one size alone,
    /// the demo's base model keeps 0.49 of its 0.69 AP@0.5 at 70 % of that width, and a short
    /// fine-tune at the new width does not win it back (docs/experiments.md). Empty: the
    /// network's own size.
    public var multiScaleWidths: [Int]

    public init(
        epochs: Int = 30, optimizer: Optimizer = .adamw, learningRate: Double = 0.01, momentum: Double = 0.9,
        weightDecay: Double = 0.0005, warmupIterations: Int = 100, finalLearningRateFraction: Double = 0.05,
        emaDecay: Double? = 0.998, seed: UInt64 = 0, freezeBackboneEpochs: Int = 0, multiScaleWidths: [Int] = []
    ) {
        self.epochs = epochs
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.warmupIterations = warmupIterations
        self.finalLearningRateFraction = finalLearningRateFraction
        self.emaDecay = emaDecay
        self.seed = seed
        self.freezeBackboneEpochs = freezeBackboneEpochs
        self.multiScaleWidths = multiScaleWidths
    }

    /// The defaults of a training from scratch, or of fine-tuning pretrained weights: a peak
    /// learning rate 30x lower (AdamW 0.0003, SGD 0.001) and a short warm-up, so the first steps
    /// do not wipe out what the weights know. Measured on coco128-person from FastestDet's COCO
    /// weights (docs/experiments.md): one epoch at AdamW 0.001 already costs 0.12 AP@0.5, and
    /// 30 epochs at 0.0003 end higher than at 0.001 or 0.0001.
    public static func defaults(fineTuning: Bool, epochs: Int = 30, optimizer: Optimizer = .adamw, seed: UInt64 = 0) -> TrainingConfiguration {
        guard fineTuning else { return TrainingConfiguration(epochs: epochs, optimizer: optimizer, seed: seed) }
        return TrainingConfiguration(epochs: epochs, optimizer: optimizer, learningRate: optimizer == .adamw ? 0.0003 : 0.001,
                                     warmupIterations: 20, seed: seed)
    }

    // Checkpoints written before `freezeBackboneEpochs` and `multiScaleWidths` existed decode with 0 and [].
    private enum CodingKeys: String, CodingKey {
        case epochs, optimizer, learningRate, momentum, weightDecay, warmupIterations, finalLearningRateFraction, emaDecay, seed
        case freezeBackboneEpochs, multiScaleWidths
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            epochs: try container.decode(Int.self, forKey: .epochs), optimizer: try container.decode(Optimizer.self, forKey: .optimizer),
            learningRate: try container.decode(Double.self, forKey: .learningRate), momentum: try container.decode(Double.self, forKey: .momentum),
            weightDecay: try container.decode(Double.self, forKey: .weightDecay),
            warmupIterations: try container.decode(Int.self, forKey: .warmupIterations),
            finalLearningRateFraction: try container.decode(Double.self, forKey: .finalLearningRateFraction),
            emaDecay: try container.decodeIfPresent(Double.self, forKey: .emaDecay), seed: try container.decode(UInt64.self, forKey: .seed),
            freezeBackboneEpochs: try container.decodeIfPresent(Int.self, forKey: .freezeBackboneEpochs) ?? 0,
            multiScaleWidths: try container.decodeIfPresent([Int].self, forKey: .multiScaleWidths) ?? [])
    }

    /// The input width of global iteration `iteration` under multi-scale training (nil: the
    /// network's own): a function of the seed and the iteration alone, so a resumed run
    /// continues with the same widths.
    public func multiScaleWidth(iteration: Int) -> Int? {
        guard !multiScaleWidths.isEmpty else { return nil }
        var generator = SplitMix64(seed: seed, 0x4D53_4341_4C45, UInt64(iteration))
        return multiScaleWidths[generator.nextIndex(below: multiScaleWidths.count)]
    }

    /// Learning rate at a global iteration: linear warm-up, then cosine decay to the final fraction.
    public func learningRate(iteration: Int, totalIterations: Int) -> Double {
        if iteration < warmupIterations {
            let progress = Double(iteration + 1) / Double(warmupIterations)
            return learningRate * (0.1 + 0.9 * progress)
        }
        let span = max(1, totalIterations - warmupIterations)
        let progress = min(1, Double(iteration - warmupIterations) / Double(span))
        let cosine = 0.5 * (1 + cos(Double.pi * progress))
        return learningRate * (finalLearningRateFraction + (1 - finalLearningRateFraction) * cosine)
    }
}

/// What a training run reports as it goes.
public struct TrainingProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var iteration: Int
    public var iterationsPerEpoch: Int
    public var terms: DetectionLossTerms
    public var learningRate: Double
    public var elapsedSeconds: Double
    /// Projected seconds left, from the mean time per iteration so far.
    public var remainingSeconds: Double
}

public enum TrainingError: Error, CustomStringConvertible {
    private static func describe(_ supernet: TrainingCheckpoint.SupernetRecord?) -> String {
        guard let supernet else { return "as one network" }
        return "as a supernet (smallest member \(supernet.smallest), widths \(supernet.inputWidths), "
            + "\(supernet.randomPerStep) random members a step, label weight \(supernet.labelWeight))"
    }

    /// The loss became NaN or infinite; the weights were not updated with it.
    case nonFiniteLoss(epoch: Int, iteration: Int, terms: DetectionLossTerms)
    case checkpointMismatch(path: String, expected: String, found: String)
    /// A resumed run trains as a supernet (of other members) where the checkpoint did not, or the other way round.
    case supernetMismatch(path: String, expected: TrainingCheckpoint.SupernetRecord?, found: TrainingCheckpoint.SupernetRecord?)
    case emptyDataset

    public var description: String {
        switch self {
        case .nonFiniteLoss(let epoch, let iteration, let terms):
            "training stopped: the loss is not finite at epoch \(epoch + 1), iteration \(iteration + 1) "
                + "(box \(terms.box), objectness \(terms.objectness), class \(terms.classification)); "
                + "lower the learning rate or check the dataset's boxes. The last checkpoint is kept."
        case .checkpointMismatch(let path, let expected, let found):
            "checkpoint \(path) is for architecture \(found), not \(expected): a training of another network "
                + "(another study's, if the output directory was reused) left it there; remove it, or train into another directory"
        case let .supernetMismatch(path, expected, found):
            "checkpoint \(path) was trained \(Self.describe(found)); this run trains \(Self.describe(expected)): "
                + "resume it with the same supernet options, or train into another directory"
        case .emptyDataset:
            "training needs at least one batch; the dataset is empty"
        }
    }
}

/// An exponential moving average of a detector's parameters and buffers, kept in a second
/// detector of the same architecture, with YOLOv5's warm-up of the decay
/// (decay · (1 − e^(−updates/2000))) so early averages are not dominated by the random start.
final class WeightAverage {
    let model: Detector
    let decay: Double
    private(set) var updates = 0

    init(of source: Detector, decay: Double) throws {
        model = try Detector(source.architecture)
        self.decay = decay
        try copy(from: source)
        model.eval()
    }

    func copy(from source: Detector) throws {
        for (average, current) in zip(model.namedState(), source.namedState()) {
            try average.tensor.assign(current.tensor)
        }
    }

    func update(from source: Detector) throws {
        updates += 1
        let weight = decay * (1 - Foundation.exp(-Double(updates) / 2000))
        try Torch.withNoGrad {
            for (average, current) in zip(model.namedState(), source.namedState()) {
                if current.tensor.dtype.isFloatingPoint {
                    try average.tensor.assign(average.tensor * weight + current.tensor.detach() * (1 - weight))
                } else {
                    try average.tensor.assign(current.tensor)
                }
            }
        }
    }
}

/// Trains a detector, one epoch after another, writing a checkpoint after each so that a
/// stopped run resumes where it was (`resume: true`).
public final class Trainer {
    public let detector: Detector
    public let configuration: TrainingConfiguration
    public let loss: DetectionLoss
    /// Where checkpoints go (nil: none). See `TrainingCheckpoint`.
    public let checkpointDirectory: URL?
    private let average: WeightAverage?
    /// Set when the detector is trained as a supernet of a search space (`SubnetworkSampling`).
    private let sandwich: SandwichStep?

    /// - Parameter subnetworks: train `detector` as a supernet whose subnetworks these are,
    ///   distilling from `detector`'s weights as they are now (nil: train it alone); its steps
    ///   then run at the widths of `subnetworks`, not at `configuration.multiScaleWidths`.
    public init(detector: Detector, configuration: TrainingConfiguration, loss: DetectionLoss = DetectionLoss(),
                checkpointDirectory: URL? = nil, subnetworks: SubnetworkSampling? = nil) throws {
        self.detector = detector
        self.configuration = configuration
        self.loss = loss
        self.checkpointDirectory = checkpointDirectory
        sandwich = try subnetworks.map { try SandwichStep(sampling: $0, supernet: detector, seed: configuration.seed) }
        average = try configuration.emaDecay.map { try WeightAverage(of: detector, decay: $0) }
        // oneDNN's convolutions compute channels-last; kept in that layout, a training step
        // skips the conversions around every convolution (0.66x the NCHW step's CPU time,
        // docs/benchmarks.md). Values and parameter objects are unchanged.
        try detector.useChannelsLast()
        try average?.model.useChannelsLast()
    }

    /// What the checkpoint records of the supernet training (nil: the network trains alone).
    private var supernetRecord: TrainingCheckpoint.SupernetRecord? { sandwich.map { TrainingCheckpoint.SupernetRecord($0.sampling) } }

    /// The weights to evaluate and deploy: the moving average when enabled.
    public var evaluationModel: Detector { average?.model ?? detector }

    /// Runs the remaining epochs. Returns the loss terms of the last iteration of each epoch run.
    /// - Parameters:
    ///   - stoppingAfter: stop after this many epochs of the schedule, which stays
    ///     fitted to `configuration.epochs`: the first epochs of a full training, as a
    ///     learning-curve estimator sees them (nil: run every epoch).
    ///   - progress: called after every iteration; an error it throws (a validation that
    ///     failed, a pruner's stop) ends the training there and is rethrown.
    @discardableResult
    public func train(
        data: any TrainingBatchProvider, resume: Bool = false, stoppingAfter lastEpoch: Int? = nil,
        progress: (TrainingProgress) throws -> Void = { _ in }
    ) throws -> [DetectionLossTerms] {
        let perEpoch = data.batchesPerEpoch
        guard perEpoch > 0 else { throw TrainingError.emptyDataset }
        var firstEpoch = 0
        if resume, let directory = checkpointDirectory, let checkpoint = try TrainingCheckpoint.load(from: directory) {
            guard checkpoint.architecture == detector.architecture.description else {
                throw TrainingError.checkpointMismatch(path: directory.path, expected: detector.architecture.description,
                                                       found: checkpoint.architecture)
            }
            guard checkpoint.supernet == supernetRecord else {
                throw TrainingError.supernetMismatch(path: directory.path, expected: supernetRecord, found: checkpoint.supernet)
            }
            try detector.load(from: directory.appendingPathComponent(TrainingCheckpoint.modelFile))
            if let average {
                try average.model.load(from: directory.appendingPathComponent(TrainingCheckpoint.averageFile))
            }
            firstEpoch = checkpoint.completedEpochs
        }
        let parameters = detector.parameters()
        let sgd = configuration.optimizer == .sgd ? try SGD(
            parameters: parameters, learningRate: configuration.learningRate, momentum: configuration.momentum,
            weightDecay: configuration.weightDecay, nesterov: true) : nil
        let adamw = configuration.optimizer == .adamw ? try AdamW(
            parameters: parameters, learningRate: configuration.learningRate, betas: (configuration.momentum, 0.999),
            weightDecay: configuration.weightDecay) : nil

        let totalIterations = configuration.epochs * perEpoch
        let endEpoch = min(configuration.epochs, lastEpoch ?? configuration.epochs)
        let start = Date()
        var iterationsRun = 0
        var epochEnds: [DetectionLossTerms] = []
        let backbone = detector.graph.nodes.filter { [.stem, .stage2, .stage3, .stage4].contains($0.block) }.map(\.name)
        let units = Dictionary(detector.units.map { ($0.name, $0.module) }, uniquingKeysWith: { a, _ in a })
        let backboneUnits = backbone.compactMap { units[$0] }
        defer { for unit in backboneUnits { for parameter in unit.parameters() { _ = try? parameter.requiresGrad(true) } } }
        for epoch in firstEpoch..<max(firstEpoch, endEpoch) {
            // A frozen backbone has no gradients (the optimizers skip it) and runs its batch norms in evaluation mode.
            let frozen = epoch < configuration.freezeBackboneEpochs
            detector.train()
            for unit in backboneUnits {
                if frozen { unit.eval() }
                for parameter in unit.parameters() { try parameter.requiresGrad(!frozen) }
            }
            var last: DetectionLossTerms?
            for index in 0..<perEpoch {
                let iteration = epoch * perEpoch + index
                let rate = configuration.learningRate(iteration: iteration, totalIterations: totalIterations)
                sgd?.learningRate = rate
                adamw?.learningRate = rate
                try detector.zeroGrad()
                let batch = try data.batch(epoch: epoch, index: index)
                let terms = try sandwich?.run(supernet: detector, on: batch, detectionLoss: loss, epoch: epoch, iteration: index)
                    ?? trainAlone(on: batch, iteration: iteration, epoch: epoch, index: index)
                try sgd?.step()
                try adamw?.step()
                try average?.update(from: detector)
                iterationsRun += 1
                last = terms
                let elapsed = Date().timeIntervalSince(start)
                let remaining = elapsed / Double(iterationsRun) * Double(endEpoch * perEpoch - iteration - 1)
                try progress(TrainingProgress(
                    epoch: epoch, epochs: configuration.epochs, iteration: index, iterationsPerEpoch: perEpoch, terms: terms,
                    learningRate: rate, elapsedSeconds: elapsed, remainingSeconds: remaining))
            }
            if let last { epochEnds.append(last) }
            if let directory = checkpointDirectory {
                try saveCheckpoint(to: directory, completedEpochs: epoch + 1, lastTerms: last)
            }
        }
        return epochEnds
    }

    /// The forward and backward pass of the network alone (no supernet) on `batch`, at the
    /// step's multi-scale width if any; returns its loss terms.
    private func trainAlone(on batch: TrainingBatch, iteration: Int, epoch: Int, index: Int) throws -> DetectionLossTerms {
        let width = configuration.multiScaleWidth(iteration: iteration) ?? detector.architecture.inputWidthPixels
        let input = detector.architecture.atInputWidth(width)
        let resized = try batch.resized(toWidth: input.inputWidth, height: input.inputHeight)
        let branches = try detector.branches(resized.images).atOwnBoxScale(of: detector.architecture, runningAt: input)
        let (total, terms) = try loss(branches, targets: resized.targets)
        guard terms.total.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, iteration: index, terms: terms) }
        try total.backward()
        return terms
    }

    private func saveCheckpoint(to directory: URL, completedEpochs: Int, lastTerms: DetectionLossTerms?) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Each file is written beside its final name and renamed over it (atomic on POSIX), so
        // a run killed while saving leaves the previous checkpoint whole.
        func save(_ model: Detector, as name: String) throws {
            let temporary = directory.appendingPathComponent(name + ".partial")
            try model.save(to: temporary)
            guard rename(temporary.path, directory.appendingPathComponent(name).path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: directory.appendingPathComponent(name).path])
            }
        }
        try save(detector, as: TrainingCheckpoint.modelFile)
        if let average { try save(average.model, as: TrainingCheckpoint.averageFile) }
        // The JSON is written last: a checkpoint counts only once its weights are complete.
        let checkpoint = TrainingCheckpoint(
            architecture: detector.architecture.description, completedEpochs: completedEpochs,
            configuration: configuration, lastLoss: lastTerms?.total, supernet: supernetRecord)
        try checkpoint.write(to: directory)
    }
}

/// The state of a training run on disk: `model.tensors` (the trained weights),
/// `model-ema.tensors` (their moving average, when enabled) and `checkpoint.json` (this value).
/// Optimizer moments are not saved: a resumed run restarts momentum from zero, which costs a
/// few iterations of warm-up at the learning rate the schedule has reached.
public struct TrainingCheckpoint: Codable, Sendable {
    public static let modelFile = "model.tensors"
    public static let averageFile = "model-ema.tensors"
    public static let stateFile = "checkpoint.json"

    public var architecture: String
    public var completedEpochs: Int
    public var configuration: TrainingConfiguration
    public var lastLoss: Double?
    /// Set when the network was trained as a supernet (nil in checkpoints of a network trained alone).
    public var supernet: SupernetRecord?

    /// The weights the run evaluates and deploys: the moving average when it kept one.
    public var deployedModelFile: String { configuration.emaDecay == nil ? Self.modelFile : Self.averageFile }

    public static func load(from directory: URL) throws -> TrainingCheckpoint? {
        let url = directory.appendingPathComponent(stateFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONDecoder().decode(TrainingCheckpoint.self, from: Data(contentsOf: url))
    }

    /// What a supernet's training trained besides the network itself (`SubnetworkSampling`).
    public struct SupernetRecord: Codable, Sendable, Equatable {
        public var smallest: String
        public var inputWidths: [Int]
        public var randomPerStep: Int
        public var labelWeight: Double

        init(_ sampling: SubnetworkSampling) {
            (smallest, inputWidths, randomPerStep, labelWeight) =
                (sampling.smallest.description, sampling.inputWidths, sampling.randomPerStep, sampling.labelWeight)
        }
    }

    func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: directory.appendingPathComponent(Self.stateFile), options: .atomic)
    }
}
