import ArgumentParser
import DetectionData
import Foundation
import Hardware
import Search
import Torch
import Vision
import Workflow

/// Options that name a dataset and its splits, in any format a project config reads (the
/// synthetic generator writes Pascal VOC).
struct DatasetOptionGroup: ParsableArguments {
    @Option(help: "Dataset root: voc (JPEGImages/, Annotations/, ImageSets/Main/), yolo (images/<split>/, labels/<split>/) or coco.")
    var data: String

    @Option(help: "Dataset format: voc, yolo or coco (as dataset.format in a config).")
    var format = ProjectConfig.DatasetFormat.voc.rawValue

    @Option(help: "Training split: voc ImageSets/Main/<split>.txt, yolo images/<split>/, coco the annotation JSON relative to --data.")
    var trainSplit = "train"

    @Option(help: "Validation split (as --train-split).")
    var valSplit = "val"

    @Option(help: "coco only: the training images' directory, relative to --data.")
    var trainImages: String?

    @Option(help: "coco only: the validation images' directory, relative to --data.")
    var valImages: String?

    @Option(help: "Classes to detect, comma separated.")
    var classes = "person"

    var classNames: [String] { classes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func validate() throws {
        guard let format = ProjectConfig.DatasetFormat(rawValue: format) else {
            throw ValidationError("--format must be one of \(ProjectConfig.DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")), not '\(self.format)'")
        }
        if format == .coco, trainImages == nil || valImages == nil {
            throw ValidationError("--format coco needs --train-images and --val-images (the splits' image directories, relative to --data)")
        }
    }

    func load(split: String) throws -> any DetectionDataset {
        let source = ProjectConfig.Dataset(format: ProjectConfig.DatasetFormat(rawValue: format) ?? .voc, path: data, train: trainSplit, val: valSplit,
                                           trainImages: trainImages, valImages: valImages, classes: classNames)
        let dataset = try source.loadSplit(split, images: split == trainSplit ? trainImages : valImages)
        if !dataset.report.skipped.isEmpty {
            print("note: \(split): \(dataset.report)")
        }
        return dataset
    }
}

/// Prints one updating line of training progress on a terminal (a line per epoch otherwise).
struct ProgressLine {
    private let isTerminal = isatty(STDOUT_FILENO) != 0

    func show(_ progress: TrainingProgress) {
        let done = progress.epoch * progress.iterationsPerEpoch + progress.iteration + 1
        let total = progress.epochs * progress.iterationsPerEpoch
        let width = 24, filled = width * done / max(1, total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "epoch %d/%d [%@] loss %.3f (box %.3f obj %.3f cls %.3f) lr %.4f  %@ left",
                          progress.epoch + 1, progress.epochs, bar, progress.terms.total, progress.terms.box,
                          progress.terms.objectness, progress.terms.classification, progress.learningRate,
                          formatDuration(progress.remainingSeconds))
        if isTerminal {
            print("\r" + line, terminator: progress.iteration + 1 == progress.iterationsPerEpoch ? "\n" : "")
        } else if progress.iteration + 1 == progress.iterationsPerEpoch {
            print(line)
        }
        // Flush every stream (naming `stdout` is not concurrency-safe in Swift 6): a log file
        // or pipe is block-buffered and would otherwise show progress only at the end.
        fflush(nil)
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
        : String(format: "%dm%02ds", total / 60, total % 60)
}

/// Trains one architecture on a dataset, evaluates AP@0.5 on the validation split and leaves
/// a checkpoint directory that `edgenas eval` and `--resume` read.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a detector architecture and report its AP@0.5.")

    @OptionGroup var dataset: DatasetOptionGroup

    @Option(help: "Architecture short name (see 'edgenas arch --help').")
    var arch = DetectorArchitecture.baseline.description

    @Option(help: "Epochs.")
    var epochs = 30

    @Option(help: "Images per batch.")
    var batchSize = 16

    @Option(help: "Optimizer: sgd or adamw.")
    var optimizer = "adamw"

    @Option(help: "Peak learning rate (default: 0.01 from scratch; 0.0003 with AdamW, 0.001 with SGD when fine-tuning --init weights).")
    var learningRate: Double?

    @OptionGroup var pretrained: PretrainedOptionGroup

    @Option(help: "Epochs at the start with the backbone frozen (fine-tuning).")
    var freezeBackboneEpochs = 0

    @Option(help: ArgumentHelp(
        "Multi-scale training: input widths, comma separated (e.g. 224,256,288,320).",
        discussion: "Each step runs the network at one of them (its aspect ratio kept), so its weights work at every width a search gives its networks."))
    var multiScale: String?

    @Flag(help: ArgumentHelp(
        "Train --arch as a supernet of the search space, so every member inherits working weights (needs --init).",
        discussion: "Each step trains it, the space's smallest member and two random ones at a random input width of the space, all distilling from the --init network; use the result as training.init of the search."))
    var supernet = false

    @Option(help: "The supernet's search space, SearchSpace YAML as written by 'edgenas suggest-space' (default: the head space).")
    var searchSpace: String?

    @Option(help: "Weight of the labels' loss beside the distillation in a supernet's training (0: distillation alone).")
    var supernetLabelWeight = 1.0

    @OptionGroup var threading: TrainingThreadsOption

    @Option(help: "Seed of weights, shuffling and augmentation.")
    var seed: UInt64 = 0

    @Option(help: "Checkpoint directory (weights, EMA weights, checkpoint.json, metrics.json).")
    var output = "runs/train"

    @Flag(help: "Continue from the checkpoint in --output.")
    var resume = false

    func validate() throws {
        try requirePositive(["batch-size": batchSize, "epochs": epochs])
        if supernet, pretrained.path == nil {
            throw ValidationError("--supernet distils from the network it starts from: give --init (pretrained weights or an 'edgenas train' checkpoint)")
        }
        if searchSpace != nil, !supernet { throw ValidationError("--search-space is the supernet's space: add --supernet") }
        if supernet, multiScale != nil {
            throw ValidationError("--multi-scale: a supernet's steps run at the input widths of its search space already; drop one of the two")
        }
        _ = try multiScaleWidths()
    }

    /// `--multi-scale`'s widths, each a positive multiple of the detector's 32-pixel stride.
    func multiScaleWidths() throws -> [Int] {
        guard let multiScale else { return [] }
        return try multiScale.split(separator: ",").map { part in
            guard let width = Int(part.trimmingCharacters(in: .whitespaces)), width > 0, width % 32 == 0 else {
                throw ValidationError("--multi-scale takes input widths that are positive multiples of 32, comma separated; '\(part)' is not one")
            }
            return width
        }
    }

    func run() throws {
        guard let optimizerKind = TrainingConfiguration.Optimizer(rawValue: optimizer) else {
            throw ValidationError("--optimizer must be sgd or adamw, not '\(optimizer)'")
        }
        var architecture = try DetectorArchitecture(shortName: arch)
        architecture.classCount = dataset.classNames.count
        Torch.setThreadCount(threading.threads)
        Torch.manualSeed(seed)

        let train = try dataset.load(split: dataset.trainSplit)
        let validation = try dataset.load(split: dataset.valSplit)
        let loader = BatchLoader(dataset: train, batchSize: batchSize, augmentation: AugmentationConfig(trainingAt: architecture),
                                 shuffle: true, seed: seed, dropLast: train.count >= 2 * batchSize)
        let initialization = try pretrained.initialization(classNames: dataset.classNames)
        var configuration = TrainingConfiguration.defaults(fineTuning: initialization != nil, epochs: epochs, optimizer: optimizerKind, seed: seed)
        configuration.learningRate = learningRate ?? configuration.learningRate
        configuration.warmupIterations = min(configuration.warmupIterations, epochs * loader.batchesPerEpoch / 5)
        configuration.freezeBackboneEpochs = freezeBackboneEpochs
        configuration.multiScaleWidths = try multiScaleWidths()
        let outputURL = URL(fileURLWithPath: output)
        let detector: Detector
        if let initialization {
            let (inherited, report) = try initialization.makeDetector(architecture, recalibratingOn: train)
            detector = inherited
            print(String(format: "fine-tuning from %@: %.1f%% of the parameters inherited", initialization.weights.path, 100 * report.inheritedShare))
        } else {
            detector = try Detector(architecture)
        }
        let subnetworks = try supernet
            ? ArchitectureSpace.subnetworkSampling(loadSearchSpace(), base: architecture, labelWeight: supernetLabelWeight) : nil
        let trainer = try Trainer(detector: detector, configuration: configuration, checkpointDirectory: outputURL, subnetworks: subnetworks)
        if let subnetworks {
            print("training as a supernet: each step also trains \(subnetworks.smallest) and \(subnetworks.randomPerStep) random members "
                  + "at widths \(subnetworks.inputWidths.map(String.init).joined(separator: "/")), distilling from the --init network")
        }
        if !configuration.multiScaleWidths.isEmpty {
            print("multi-scale: each step at one of the widths \(configuration.multiScaleWidths.map(String.init).joined(separator: "/"))")
        }
        print("training \(architecture) at \(architecture.inputWidth)x\(architecture.inputHeight) px on \(train.count) images (\(loader.batchesPerEpoch) batches/epoch), "
              + "validating on \(validation.count); lr \(configuration.learningRate); \(threading.threads) threads")
        fflush(nil)
        // Latency measurements on this machine wait while training runs (and training waits
        // for a running measurement), so neither disturbs the other.
        let machineLock = try MeasurementLock(.training, timeout: 3600)
        defer { machineLock.release() }
        let started = Date()
        let progress = ProgressLine()
        try trainer.train(data: LoaderBatches(loader: loader), resume: resume) { progress.show($0) }
        let trainingSeconds = Date().timeIntervalSince(started)
        let result = try DetectorEvaluation.evaluate(trainer.evaluationModel, on: validation)
        print(String(format: "AP@0.5 %.4f  mAP@[.5:.95] %.4f  on %d validation images  (trained in %@)",
                     result.averagePrecision50, result.cocoAveragePrecision, result.images, formatDuration(trainingSeconds)))
        try writeMetrics(result, architecture: architecture, seconds: trainingSeconds, to: outputURL)
    }

    private func loadSearchSpace() throws -> SearchSpace {
        guard let searchSpace else { return ArchitectureSpace.defaultSpace }
        let text: String
        do { text = try String(contentsOfFile: searchSpace, encoding: .utf8) } catch {
            throw ValidationError("--search-space \(searchSpace): cannot read it (\(error.localizedDescription))")
        }
        do { return try SearchSpace.decode(yaml: text) } catch {
            throw ValidationError("--search-space \(searchSpace): \(error)")
        }
    }

    private func writeMetrics(_ result: DetectorEvaluation.Result, architecture: DetectorArchitecture, seconds: Double, to directory: URL) throws {
        struct Metrics: Encodable {
            var architecture: String
            var evaluation: DetectorEvaluation.Result
            var trainingSeconds: Double
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = directory.appendingPathComponent("metrics.json")
        try encoder.encode(Metrics(architecture: architecture.description, evaluation: result, trainingSeconds: seconds)).write(to: url)
        print("wrote \(url.path)")
    }
}

/// Evaluates a trained checkpoint on a dataset split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Measure AP@0.5 and mAP of a trained checkpoint.")

    @OptionGroup var dataset: DatasetOptionGroup

    @OptionGroup var trained: CheckpointOptionGroup

    @Option(help: "Architecture to evaluate (default: the checkpoint's; with --init, the weights are inherited into it).")
    var arch: String?

    func run() throws {
        let requested = try arch.map { try DetectorArchitecture(shortName: $0) }
        // The split evaluated is --val-split (an own --split option here once shadowed it silently).
        let images = try dataset.load(split: dataset.valSplit)
        let (detector, _, pretrained) = try trained.loadDetector(classNames: dataset.classNames, architecture: requested) {
            try dataset.load(split: dataset.trainSplit)
        }
        let result = try DetectorEvaluation.evaluate(detector, on: images)
        print(String(format: "%@ on %@/%@: AP@0.5 %.4f  mAP@[.5:.95] %.4f  (%d images, %d detections)",
                     detector.architecture.description, dataset.data, dataset.valSplit, result.averagePrecision50, result.cocoAveragePrecision,
                     result.images, result.detections))
        if arch == nil, let pretrained { try evaluateWithTheCheckpointClasses(pretrained, on: images) }
    }

    /// A detector checkpoint with more classes than the dataset's (FastestDet's 80 COCO classes
    /// for a person dataset) is also scored as published: all its classes, each detection
    /// counted for the dataset class of its best class (others dropped). The person-only
    /// network above is what fine-tuning starts from; this is the published model's own figure.
    private func evaluateWithTheCheckpointClasses(_ weights: PretrainedWeights, on images: any DetectionDataset) throws {
        guard let checkpointClasses = weights.classNames, checkpointClasses.count > dataset.classNames.count,
              weights.format == .fastestDet || weights.format == .edgenas else { return }
        let published = try Detector(weights.architecture)
        try WeightInheritance.inherit(weights, into: published, classNames: checkpointClasses)
        let wanted = Dictionary(dataset.classNames.enumerated().map { ($1.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let result = try DetectorEvaluation.evaluate(published, on: images,
                                                     datasetClasses: checkpointClasses.map { wanted[$0.lowercased()] })
        print(String(format: "%@ with the checkpoint's %d classes, scored for %@: AP@0.5 %.4f  mAP@[.5:.95] %.4f",
                     published.architecture.description, checkpointClasses.count, dataset.classNames.joined(separator: ", "),
                     result.averagePrecision50, result.cocoAveragePrecision))
    }
}
