import ArgumentParser
import Estimation
import Estimators
import Foundation
import Torch
import Vision

private func integers(_ text: String, option: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, let parsed = values as? [Int] else {
        throw ValidationError("\(option) must be comma-separated integers, not '\(text)'")
    }
    return parsed
}

/// Stage one of the two-stage procedure: train K reference architectures of the head space
/// fully, score them with every estimation strategy, rank the strategies by Kendall tau against
/// the true AP@0.5 and pick the best affordable one.
struct SelectEstimatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "select-estimator",
        abstract: "Rank performance-estimation strategies on K fully trained reference architectures.",
        discussion: """
        Writes rank_table.csv, rank_table.txt and selection.json to --output, and keeps each \
        reference's training record and proxy scores under --output/cache, so a rerun (or a run \
        resumed after an interruption) trains only the architectures not yet done. \
        'edgenas plan --selection OUTPUT/selection.json' projects the search cost of each strategy.
        """)

    @OptionGroup var dataset: DatasetOptionGroup

    @Option(name: .customLong("k"), help: "Reference architectures to train fully.")
    var referenceCount = 40

    @Option(help: "Epochs of a full training (the truth is AP@0.5 after the last one).")
    var epochs = 30

    @Option(help: "Epoch budgets of the learning-curve strategies, comma separated (default: 1 ... epochs-1).")
    var budgets: String?

    @Option(help: "Head kernel sizes of the space (default: the seed's head space, as a config's default search space).")
    var kernels = Self.list(DetectorHeadSpace.seed.kernelSizes)
    @Option(help: "Head groups of the space.")
    var groups = Self.list(DetectorHeadSpace.seed.groups)
    @Option(help: "Head channels of the space.")
    var channels = Self.list(DetectorHeadSpace.seed.channels)
    @Option(help: "Input widths of the space.")
    var widths = Self.list(DetectorHeadSpace.seed.inputWidths)

    static func list(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }

    @Option(help: "Images per training batch.")
    var batchSize = 16
    @Option(help: "Images in the zero-cost proxies' minibatch.")
    var proxyBatchSize = 16
    @Option(help: "Peak learning rate (default: 0.01 from scratch; 0.0003 with AdamW when fine-tuning --init weights).")
    var learningRate: Double?
    @Option(help: "Cross-validation folds of the model-based predictors.")
    var folds = 5
    @Option(help: "Bootstrap resamples of the tau intervals.")
    var resamples = 1000
    @Option(help: "A strategy is affordable when it costs at most this fraction of one full training.")
    var maxCostFraction = 0.25
    @OptionGroup var threading: TrainingThreadsOption
    @Option(help: "Seed of the sample, the weights, the data order, the folds and the bootstrap.")
    var seed: UInt64 = 0
    @Option(help: "Output directory.")
    var output = "runs/select-estimator"

    @OptionGroup var pretrained: PretrainedOptionGroup

    func validate() throws { try requirePositive(["batch-size": batchSize, "proxy-batch-size": proxyBatchSize, "epochs": epochs]) }

    func run() throws {
        let space = DetectorHeadSpace(kernelSizes: try integers(kernels, option: "--kernels"), groups: try integers(groups, option: "--groups"),
                                      channels: try integers(channels, option: "--channels"), inputWidths: try integers(widths, option: "--widths"))
        var base = DetectorArchitecture.baseline
        base.classCount = dataset.classNames.count
        let architectures = try space.sample(referenceCount, seed: seed, base: base)
        let initialization = try pretrained.initialization(classNames: dataset.classNames)
        var configuration = TrainingConfiguration.defaults(fineTuning: initialization != nil, epochs: epochs, seed: seed)
        configuration.learningRate = learningRate ?? configuration.learningRate
        let settings = SelectionSettings(
            epochs: epochs, epochBudgets: try budgets.map { try integers($0, option: "--budgets") }, folds: folds,
            bootstrapResamples: resamples, maxCostFraction: maxCostFraction, seed: seed,
            trainingKey: "data=\(dataset.data) train=\(dataset.trainSplit) val=\(dataset.valSplit) classes=\(dataset.classes) "
                + "batch=\(batchSize) lr=\(configuration.learningRate) proxy-batch=\(proxyBatchSize) seed=\(seed)"
                + (pretrained.path.map { " init=\($0)" } ?? ""))
        Torch.setThreadCount(threading.threads)
        let train = try dataset.load(split: dataset.trainSplit)
        let validation = try dataset.load(split: dataset.valSplit)
        let trainer = DetectorReferenceTrainer(
            trainingSet: train, validationSet: validation, batchSize: batchSize, configuration: configuration,
            initialization: initialization, progress: ProgressLine().show)
        let proxies = DetectorProxyScorer(trainingSet: train, batchSize: proxyBatchSize, seed: seed, initialization: initialization)
        let outputURL = URL(fileURLWithPath: output)
        print("select-estimator: \(architectures.count) references of the head space, \(epochs) epochs each, "
              + "\(train.count) training / \(validation.count) validation images, \(threading.threads) threads")
        fflush(nil)
        let result = try EstimatorSelection(settings: settings).run(
            architectures: architectures, trainer: trainer, proxies: proxies,
            cache: SelectionCache(directory: outputURL.appendingPathComponent("cache"))
        ) { line in
            print(line)
            fflush(nil)
        }
        try result.write(to: outputURL)
        print("")
        print(result.text, terminator: "")
        print("wrote \(outputURL.path)/rank_table.csv, rank_table.txt, selection.json")
    }
}

/// The budget planner: projects N search trials with every ranked strategy and chooses the
/// best one the budget allows.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Project the cost of a search with each estimation strategy and choose one by budget.",
        discussion: """
        The full-training time is --full-training-seconds when given; otherwise, with --data, one \
        full training of --arch is timed; otherwise the selection's mean over its references is used.
        """)

    @Option(help: "selection.json written by 'edgenas select-estimator'.")
    var selection: String

    @Option(help: "Search trials to plan for.")
    var trials = 100

    @Option(help: "Architectures of the final front that are retrained fully after the search.")
    var frontSize = 5

    @Option(help: "Total time budget in hours (search + retraining + selection); picks the best strategy that fits.")
    var budgetHours: Double?

    @Option(help: "Seconds of one full training, taken as given.")
    var fullTrainingSeconds: Double?

    @Option(help: "Dataset to time one full training on, when --full-training-seconds is not given.")
    var data: String?
    @Option(help: "Its format: voc, yolo or coco (coco also needs --train-images and --val-images, as 'edgenas train').")
    var format = "voc"
    @Option(help: "coco only: the training images' directory, relative to --data.")
    var trainImages: String?
    @Option(help: "coco only: the validation images' directory, relative to --data.")
    var valImages: String?
    @Option(help: "Architecture to time.")
    var arch = DetectorArchitecture.baseline.description
    @Option(help: "Images per batch of the timed training.")
    var batchSize = 16

    @OptionGroup var threading: TrainingThreadsOption

    @OptionGroup var pretrained: PretrainedOptionGroup

    @Option(help: "Output directory for plan.csv, plan.txt and plan.json.")
    var output: String?

    func validate() throws { try requirePositive(["batch-size": batchSize]) }

    func run() throws {
        let result = try SelectionResult.read(from: URL(fileURLWithPath: selection))
        let fullSeconds: Double
        let source: String
        if let given = fullTrainingSeconds {
            guard given > 0 else { throw ValidationError("--full-training-seconds must be > 0, not \(given)") }
            (fullSeconds, source) = (given, "given")
        } else if let data {
            fullSeconds = try timeFullTraining(data: data, epochs: result.settings.epochs)
            source = "timed: \(arch), \(result.settings.epochs) epochs"
        } else {
            (fullSeconds, source) = (result.meanFullTrainingSeconds, "mean of the selection's \(result.architectures.count) references")
        }
        let plan = try result.plan(fullTrainingSeconds: fullSeconds, trials: trials, frontSize: frontSize)
        let taus = result.kendallTaus
        var text = "full training: \(String(format: "%.1f", fullSeconds)) s (\(source))\n\n" + plan.text(kendallTaus: taus)
        if let budgetHours {
            let budget = budgetHours * 3600
            if plan.baselineSeconds <= budget {
                text += String(format: "budget %.2f h: full training of every trial fits (%.2f h); no estimation needed\n",
                               budgetHours, plan.baselineSeconds / 3600)
            } else if let choice = plan.choose(budgetSeconds: budget, kendallTaus: taus) {
                text += String(format: "budget %.2f h: use %@ (tau %.3f), %.2f h in total, %.1fx faster than full training\n",
                               budgetHours, choice.strategy, taus[choice.strategy] ?? .nan, choice.totalSeconds / 3600, choice.overallSpeedup)
            } else {
                text += String(format: "budget %.2f h: no strategy fits; the cheapest total is %.2f h\n", budgetHours,
                               (plan.rows.map(\.totalSeconds).min() ?? .nan) / 3600)
            }
        } else if let chosen = result.chosen {
            text += "no --budget-hours: the selection's best affordable strategy is \(chosen)\n"
        }
        print(text, terminator: "")
        if let output {
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try plan.csv.write(to: url.appendingPathComponent("plan.csv"), atomically: true, encoding: .utf8)
            try text.write(to: url.appendingPathComponent("plan.txt"), atomically: true, encoding: .utf8)
            try plan.json().write(to: url.appendingPathComponent("plan.json"), options: .atomic)
            print("wrote \(url.path)/plan.csv, plan.txt, plan.json")
        }
    }

    /// Trains `arch` once for `epochs` and returns its training time plus one validation.
    private func timeFullTraining(data: String, epochs: Int) throws -> Double {
        let options = try DatasetOptionGroup.parse(
            ["--data", data, "--format", format] + (trainImages.map { ["--train-images", $0] } ?? []) + (valImages.map { ["--val-images", $0] } ?? []))
        var architecture = try DetectorArchitecture(shortName: arch)
        architecture.classCount = options.classNames.count
        Torch.setThreadCount(threading.threads)
        let trainer = DetectorReferenceTrainer(
            trainingSet: try options.load(split: options.trainSplit), validationSet: try options.load(split: options.valSplit),
            batchSize: batchSize, configuration: .defaults(fineTuning: pretrained.path != nil, epochs: epochs),
            initialization: try pretrained.initialization(classNames: options.classNames), progress: ProgressLine().show)
        print("timing one full training of \(architecture) (\(epochs) epochs)")
        return try trainer.train(architecture, epochs: epochs, validatingAfter: [epochs]).fullTrainingSeconds
    }
}
