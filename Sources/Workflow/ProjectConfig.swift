import DetectionData
import Foundation
import Hardware
import LatencyBackends
import Search
import Vision
import Yams

/// Why a project config cannot be used. Every case names the key (a dotted path such as
/// `budget.trials`) and what was expected there.
public enum ProjectConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case invalidYAML(reason: String)
    case missingKey(key: String, expected: String)
    case invalidValue(key: String, expected: String, found: String)
    case unknownKey(key: String, known: [String])

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .invalidYAML(let reason): "the config is not valid YAML: \(reason)"
        case .missingKey(let key, let expected): "\(key): missing; expected \(expected)"
        case .invalidValue(let key, let expected, let found): "\(key): expected \(expected), found \(found)"
        case .unknownKey(let key, let known): "\(key): unknown key; expected one of \(known.joined(separator: ", "))"
        }
    }
}

/// The objectives a search may optimise. AP@0.5 and latency are always there; parameter
/// count and peak activation memory are optional third and fourth objectives.
public enum SearchObjective: String, Codable, Hashable, Sendable, CaseIterable {
    /// AP@0.5 on the validation split (or the estimator's stand-in for it), maximised.
    case ap50
    /// Median latency in milliseconds on the latency backend, minimised.
    case latency
    /// Trainable parameters, minimised.
    case params
    /// Peak activation memory of one forward pass in MB (float32, batch 1), minimised.
    case memory

    public var direction: StudyDirection { self == .ap50 ? .maximize : .minimize }
}

/// What a constraint can bound: an objective, or a quantity measured but not optimised.
public enum ConstrainedMetric: String, Codable, Hashable, Sendable, CaseIterable {
    case ap50, latency, params, memory
    /// Integer operators an NPU compiler leaves on the CPU because the NPU lacks them
    /// (`NPUMapping.fallbackOperators`); only the `vela` latency backend measures it.
    case npuFallbackOps = "npu_fallback_ops"

    /// The objective of the same name; nil for a quantity that is only measured.
    public var objective: SearchObjective? { SearchObjective(rawValue: rawValue) }
}

/// A bound on one measured quantity, e.g. latency at most 20 ms. A trial that breaks it is
/// infeasible: it stays in the study but cannot be on the front while feasible trials exist.
public struct SearchConstraint: Codable, Hashable, Sendable {
    public var metric: ConstrainedMetric
    public var minimum: Double?
    public var maximum: Double?

    public init(metric: ConstrainedMetric, minimum: Double? = nil, maximum: Double? = nil) {
        self.metric = metric
        self.minimum = minimum
        self.maximum = maximum
    }

    /// Constraint values in the study's convention (feasible when <= 0), one per bound.
    public func values(for measured: Double) -> [Double] {
        (minimum.map { [$0 - measured] } ?? []) + (maximum.map { [measured - $0] } ?? [])
    }
}

/// Everything `edgenas search` needs, read from a YAML file (see `ProjectConfig.example`).
public struct ProjectConfig: Hashable, Sendable {
    public enum DatasetFormat: String, Codable, Hashable, Sendable, CaseIterable { case voc, yolo, coco }

    public struct Dataset: Hashable, Sendable {
        public var format: DatasetFormat
        /// Dataset root (absolute, resolved against the config file's directory).
        public var path: String
        /// Training split: a split name (voc: ImageSets/Main/<name>.txt; yolo: images/<name>/)
        /// or, for coco, the annotation JSON relative to `path`.
        public var train: String
        public var val: String
        /// coco only: image directories of the splits, relative to `path`.
        public var trainImages: String?
        public var valImages: String?
        public var classes: [String]

        public init(format: DatasetFormat, path: String, train: String, val: String, trainImages: String? = nil, valImages: String? = nil,
                    classes: [String]) {
            self.format = format
            self.path = path
            self.train = train
            self.val = val
            self.trainImages = trainImages
            self.valImages = valImages
            self.classes = classes
        }

        /// One split in this dataset's format: `name` is a split name (voc, yolo) or the
        /// annotation JSON relative to `path` (coco, whose images are in `images`).
        public func loadSplit(_ name: String, images: String?) throws -> any DetectionDataset {
            let root = URL(fileURLWithPath: path)
            let options = DatasetOptions(classFilter: classes)
            switch format {
            case .voc: return try VOCDataset(root: root, split: name, options: options)
            case .yolo: return try YOLODataset(root: root, split: name, sourceClassNames: classes, options: options)
            case .coco:
                return try COCODataset(annotationFile: root.appendingPathComponent(name),
                                       imageDirectory: root.appendingPathComponent(images ?? ""), options: options)
            }
        }
    }

    public struct Budget: Hashable, Sendable {
        /// Complete trials of the search (the baseline counts as one).
        public var trials: Int?
        /// Wall-clock hours of the search phase, summed over resumed runs.
        public var hours: Double?
    }

    public struct Latency: Hashable, Sendable {
        /// Backend specification (see `LatencyBackendFactory`), e.g. `int8` or `agent http://board:8420`.
        public var backend: String
        /// Intra-op threads the backend measures with.
        public var threads: Int
        /// Precision of the model an agent or a benchmark command gets (key
        /// `deployed_precision`: int8, the default, or fp32).
        public var deployedPrecision: ONNXRuntimeBackend.Precision = .int8
        /// Its format (key `deployed_format`: onnx, the default, or tflite for a board that runs
        /// LiteRT).
        public var deployedFormat: DeployedModel.Format = .onnx
    }

    public struct Training: Hashable, Sendable {
        /// Epochs of a full training (the `full` estimator and the retraining of candidates).
        public var epochs: Int
        /// Epochs of the short-training estimators (`short`, `sotl`, `extrapolate`).
        public var shortEpochs: Int
        public var batchSize: Int
        /// `training.learning_rate` as written (nil: the default).
        public var givenLearningRate: Double?
        public var optimizer: TrainingConfiguration.Optimizer
        /// Intra-op threads for training.
        public var threads: Int
        /// Pretrained weights every trained network starts from (absolute path; nil: from
        /// scratch): see `PretrainedWeights.load`.
        public var initialization: String?
        /// Class list of those weights (absolute path; nil: the `*.names` file beside them).
        public var initializationClasses: String?
        /// Epochs at the start of each training with the backbone frozen.
        public var freezeBackboneEpochs: Int = 0

        /// Peak learning rate: as given, else the default of training from scratch or of
        /// fine-tuning pretrained weights (`TrainingConfiguration.defaults`).
        public var learningRate: Double {
            givenLearningRate ?? TrainingConfiguration.defaults(fineTuning: initialization != nil, optimizer: optimizer).learningRate
        }
    }

    /// The two-stage estimator selection the `auto` plan runs when the budget cannot afford
    /// full training (and that a `predictor:NAME` estimator learns from).
    public struct Selection: Hashable, Sendable {
        /// Reference architectures trained fully (the baseline among them); 0 turns the
        /// selection off, and `auto` then falls back to short training.
        public var references: Int
        /// A strategy is affordable when one evaluation costs at most this fraction of a full training.
        public var maxCostFraction: Double
        /// Cross-validation folds of the model-based predictors.
        public var folds: Int
        /// Bootstrap resamples of the Kendall tau intervals.
        public var resamples: Int
    }

    /// Study name in the storage.
    public var name: String
    public var dataset: Dataset
    public var baseModel: DetectorArchitecture
    public var searchSpace: SearchSpace
    /// `default`, or the SearchSpace YAML file the space came from.
    public var searchSpaceSource: String
    public var objectives: [SearchObjective]
    public var constraints: [SearchConstraint]
    public var budget: Budget
    /// `auto`, `select`, or an estimator name `EstimatorCatalog` knows.
    public var estimator: String
    /// The `estimator` value that always runs the two-stage selection and searches with its choice.
    public static let selectedEstimator = "select"
    public var selection: Selection
    /// A name from `SamplerCatalog.names`.
    public var sampler: String
    /// What stops trials early, from their AP@0.5 after each training epoch (`EpochPruning`).
    public var pruner: PrunerSetting
    public var latency: Latency
    /// Study storage URL (sqlite:///..., postgresql://..., memory:).
    public var storage: String
    public var seed: UInt64
    public var training: Training
    /// Most Pareto candidates retrained fully after a low-fidelity search (the baseline is
    /// always retrained as well, as the reference).
    public var retrainCandidates: Int
    /// Report directory (absolute).
    public var output: String

    /// Reads and checks a config file; relative paths in it are resolved against its directory.
    /// The environment variable that gives the study storage when a config has no `storage`
    /// key (and `--storage` of the study commands when it is not given).
    public static let storageEnvironmentVariable = "EDGENAS_STORAGE"
    static var storageFromEnvironment: String? {
        ProcessInfo.processInfo.environment[storageEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static func load(path: String) throws(ProjectConfigError) -> ProjectConfig {
        let url = URL(fileURLWithPath: path)
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw .unreadableFile(path: path, reason: error.localizedDescription)
        }
        return try parse(yaml: text, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses config text. `baseDirectory` anchors relative paths.
    public static func parse(yaml: String, baseDirectory: URL) throws(ProjectConfigError) -> ProjectConfig {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch { throw .invalidYAML(reason: "\(error)") }
        guard let node else { throw .invalidYAML(reason: "the document is empty") }
        let root = try ConfigMapping(node, key: "(document)")
        return try ProjectConfig(root: root, baseDirectory: baseDirectory)
    }

    private init(root: ConfigMapping, baseDirectory: URL) throws(ProjectConfigError) {
        try root.allowOnly(["name", "dataset", "base_model", "search_space", "objectives", "constraints", "budget",
                            "estimator", "selection", "sampler", "pruner", "latency", "storage", "seed", "training", "retrain", "output"])
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : baseDirectory.appendingPathComponent(path).standardizedFileURL.path
        }
        name = try root.string("name", default: "edgenas")

        let data = try root.mapping("dataset")
        try data.allowOnly(["format", "path", "train", "val", "train_images", "val_images", "classes"])
        let formatText = try data.string("format", default: "voc")
        guard let format = DatasetFormat(rawValue: formatText) else {
            throw .invalidValue(key: "dataset.format", expected: "one of voc, yolo, coco", found: "'\(formatText)'")
        }
        let classes = try data.stringList("classes", default: ["person"])
        guard !classes.isEmpty else { throw .invalidValue(key: "dataset.classes", expected: "at least one class name", found: "an empty list") }
        dataset = Dataset(
            format: format, path: resolve(try data.requiredString("path", expected: "the dataset's root directory")),
            train: try data.string("train", default: format == .coco ? "annotations/instances_train.json" : "train"),
            val: try data.string("val", default: format == .coco ? "annotations/instances_val.json" : "val"),
            trainImages: try data.optionalString("train_images"), valImages: try data.optionalString("val_images"),
            classes: classes)
        if format == .coco, dataset.trainImages == nil || dataset.valImages == nil {
            throw .missingKey(key: dataset.trainImages == nil ? "dataset.train_images" : "dataset.val_images",
                              expected: "the split's image directory, relative to dataset.path (coco only)")
        }

        let baseName = try root.string("base_model", default: DetectorArchitecture.baseline.description)
        do {
            baseModel = try DetectorArchitecture(shortName: baseName)
        } catch {
            throw .invalidValue(key: "base_model", expected: "an architecture short name such as k5-g1-c96-w320 (\(error))", found: "'\(baseName)'")
        }
        baseModel.classCount = classes.count

        searchSpaceSource = "default"
        searchSpace = ArchitectureSpace.defaultSpace
        if let spaceNode = root.node("search_space") {
            if let text = spaceNode.string, text != "default" {
                searchSpaceSource = resolve(text)
                let spaceText: String
                do { spaceText = try String(contentsOfFile: searchSpaceSource, encoding: .utf8) } catch {
                    throw .unreadableFile(path: searchSpaceSource, reason: error.localizedDescription)
                }
                do { searchSpace = try SearchSpace.decode(yaml: spaceText) } catch {
                    throw .invalidValue(key: "search_space", expected: "a SearchSpace YAML file (\(error))", found: "'\(text)'")
                }
            } else if spaceNode.mapping != nil {
                searchSpaceSource = "inline"
                do { searchSpace = try YAMLDecoder().decode(SearchSpace.self, from: spaceNode) } catch let error as SearchSpaceError {
                    throw .invalidValue(key: "search_space", expected: "a space with a 'parameters' mapping", found: error.description)
                } catch {
                    throw .invalidValue(key: "search_space", expected: "a space with a 'parameters' mapping", found: "\(error)")
                }
            } else if spaceNode.string != "default" {
                throw .invalidValue(key: "search_space", expected: "default, a SearchSpace YAML file, or a mapping with 'parameters'",
                                    found: describe(spaceNode))
            }
        }
        for parameter in searchSpace.names where ArchitectureSpace.Parameter(rawValue: parameter) == nil {
            throw .invalidValue(key: "search_space.parameters.\(parameter)",
                                expected: "a parameter of the architecture: \(ArchitectureSpace.Parameter.allCases.map(\.rawValue).joined(separator: ", "))",
                                found: "'\(parameter)'")
        }

        let objectiveNames = try root.stringList("objectives", default: ["ap50", "latency"])
        objectives = []
        for (index, text) in objectiveNames.enumerated() {
            guard let objective = SearchObjective(rawValue: text) else {
                throw .invalidValue(key: "objectives[\(index)]", expected: "one of ap50, latency, params, memory", found: "'\(text)'")
            }
            guard !objectives.contains(objective) else {
                throw .invalidValue(key: "objectives[\(index)]", expected: "each objective once", found: "'\(text)' again")
            }
            objectives.append(objective)
        }
        guard objectives.prefix(2) == [.ap50, .latency] else {
            throw .invalidValue(key: "objectives", expected: "ap50 and latency first (then optionally params, memory)",
                                found: "[\(objectiveNames.joined(separator: ", "))]")
        }

        constraints = []
        if let bounds = try root.optionalMapping("constraints") {
            for key in bounds.keys {
                let path = "constraints.\(key)"
                guard let metric = ConstrainedMetric(rawValue: key) else {
                    throw .unknownKey(key: path, known: ConstrainedMetric.allCases.map(\.rawValue))
                }
                // `npu_fallback_ops: 0` is short for `{max: 0}`.
                if let maximum = try bounds.scalarNumber(key) {
                    constraints.append(SearchConstraint(metric: metric, maximum: maximum))
                    continue
                }
                let bound = try bounds.mapping(key)
                try bound.allowOnly(["min", "max"])
                let constraint = SearchConstraint(metric: metric, minimum: try bound.optionalNumber("min"), maximum: try bound.optionalNumber("max"))
                guard constraint.minimum != nil || constraint.maximum != nil else {
                    throw .missingKey(key: path + ".max", expected: "a number (or min)")
                }
                constraints.append(constraint)
            }
        }

        let budgetNode = try root.mapping("budget")
        try budgetNode.allowOnly(["trials", "hours"])
        budget = Budget(trials: try budgetNode.optionalInt("trials", atLeast: 1), hours: try budgetNode.optionalNumber("hours", above: 0))
        guard budget.trials != nil || budget.hours != nil else {
            throw .missingKey(key: "budget.trials", expected: "a positive number of trials, or budget.hours, or both")
        }

        estimator = try root.string("estimator", default: "auto")
        let selectionNode = try root.optionalMapping("selection")
        try selectionNode?.allowOnly(["references", "max_cost_fraction", "folds", "resamples"])
        selection = Selection(
            references: try selectionNode?.optionalInt("references", atLeast: 0) ?? 40,
            maxCostFraction: try selectionNode?.optionalNumber("max_cost_fraction", above: 0) ?? 0.25,
            folds: try selectionNode?.optionalInt("folds", atLeast: 2) ?? 5,
            resamples: try selectionNode?.optionalInt("resamples", atLeast: 1) ?? 1000)
        if (1..<4).contains(selection.references) {
            throw .invalidValue(key: "selection.references", expected: "0 (no selection) or at least 4", found: String(selection.references))
        }
        sampler = try root.string("sampler", default: "auto")
        guard SamplerCatalog.names.contains(sampler) else {
            throw .invalidValue(key: "sampler", expected: "one of \(SamplerCatalog.names.joined(separator: ", "))", found: "'\(sampler)'")
        }

        pruner = try Self.prunerSetting(root)

        let latencyNode = try root.optionalMapping("latency")
        try latencyNode?.allowOnly(["backend", "threads", "deployed_precision", "deployed_format"])
        let precision = try latencyNode?.string("deployed_precision", default: "int8") ?? "int8"
        guard let deployedPrecision = ONNXRuntimeBackend.Precision(rawValue: precision) else {
            throw .invalidValue(key: "latency.deployed_precision", expected: "int8 or fp32", found: "'\(precision)'")
        }
        let formatName = try latencyNode?.string("deployed_format", default: "onnx") ?? "onnx"
        guard let deployedFormat = DeployedModel.Format(rawValue: formatName) else {
            throw .invalidValue(key: "latency.deployed_format", expected: "onnx or tflite", found: "'\(formatName)'")
        }
        latency = Latency(backend: try latencyNode?.string("backend", default: "int8") ?? "int8",
                          threads: try latencyNode?.optionalInt("threads", atLeast: 1) ?? 1, deployedPrecision: deployedPrecision,
                          deployedFormat: deployedFormat)
        try LatencyBackendFactory.validate(latency.backend)
        if constraints.contains(where: { $0.metric == .npuFallbackOps }),
           (try? LatencyBackendSpec(parsing: latency.backend))?.reportsNPUMapping != true {
            throw .invalidValue(key: "constraints.npu_fallback_ops",
                                expected: "latency.backend 'vela ACCELERATOR' (only an NPU compiler says which operators fall back to the CPU)",
                                found: "latency.backend '\(latency.backend)'")
        }

        // A cluster keeps the URL (and its password) out of the config: EDGENAS_STORAGE stands in
        // for a missing `storage` key.
        let storageURL = try root.string("storage", default: Self.storageFromEnvironment ?? "sqlite://edgenas.db")
        // A relative SQLite path is relative to the config file, like every other path in it.
        if storageURL.hasPrefix("sqlite://"), !storageURL.hasPrefix("sqlite:///") {
            storage = "sqlite://" + resolve(String(storageURL.dropFirst("sqlite://".count)))
        } else if storageURL.hasPrefix("sqlite://") || storageURL.hasPrefix("postgresql://") || storageURL.hasPrefix("postgres://") || storageURL == "memory:" {
            storage = storageURL
        } else {
            throw .invalidValue(key: "storage", expected: "sqlite://path, postgresql://user:password@host:port/db, or memory:", found: "'\(storageURL)'")
        }
        guard let seedValue = UInt64(exactly: try root.optionalInt("seed", atLeast: 0) ?? 0) else {
            throw .invalidValue(key: "seed", expected: "a non-negative integer", found: "a negative number")
        }
        seed = seedValue

        let trainingNode = try root.optionalMapping("training")
        try trainingNode?.allowOnly(["epochs", "short_epochs", "batch_size", "learning_rate", "optimizer", "threads", "init", "init_classes",
                                     "freeze_backbone_epochs"])
        let initialization = try trainingNode?.optionalString("init").map(resolve)
        let optimizerText = try trainingNode?.string("optimizer", default: "adamw") ?? "adamw"
        guard let optimizer = TrainingConfiguration.Optimizer(rawValue: optimizerText) else {
            throw .invalidValue(key: "training.optimizer", expected: "sgd or adamw", found: "'\(optimizerText)'")
        }
        training = Training(
            epochs: try trainingNode?.optionalInt("epochs", atLeast: 1) ?? 60,
            shortEpochs: try trainingNode?.optionalInt("short_epochs", atLeast: 1) ?? 5,
            batchSize: try trainingNode?.optionalInt("batch_size", atLeast: 1) ?? 16,
            givenLearningRate: try trainingNode?.optionalNumber("learning_rate", above: 0),
            optimizer: optimizer,
            threads: try trainingNode?.optionalInt("threads", atLeast: 1) ?? ProcessInfo.processInfo.activeProcessorCount,
            initialization: initialization,
            initializationClasses: try trainingNode?.optionalString("init_classes").map(resolve),
            freezeBackboneEpochs: try trainingNode?.optionalInt("freeze_backbone_epochs", atLeast: 0) ?? 0)
        if let initialization, !FileManager.default.fileExists(atPath: initialization) {
            throw .invalidValue(key: "training.init", expected: "pretrained weights (an 'edgenas train' checkpoint directory or a .pth file)",
                                found: "'\(initialization)', which does not exist")
        }
        guard training.shortEpochs <= training.epochs else {
            throw .invalidValue(key: "training.short_epochs", expected: "at most training.epochs (\(training.epochs))", found: String(training.shortEpochs))
        }

        guard estimator == "auto" || estimator == Self.selectedEstimator || EstimatorCatalog.isKnown(estimator, training: training) else {
            throw .invalidValue(key: "estimator", expected: EstimatorCatalog.expected(training: training), found: "'\(estimator)'")
        }
        if estimator.hasPrefix(EstimatorCatalog.predictorPrefix) || estimator == Self.selectedEstimator, selection.references == 0 {
            throw .invalidValue(key: "selection.references", expected: "at least 4: estimator \(estimator) learns from the references",
                                found: "0")
        }

        let retrainNode = try root.optionalMapping("retrain")
        try retrainNode?.allowOnly(["candidates"])
        retrainCandidates = try retrainNode?.optionalInt("candidates", atLeast: 0) ?? 5
        output = resolve(try root.string("output", default: "edgenas-report"))

        // The baseline must be a point of the space: it is enqueued as the first trial.
        do { try searchSpace.validate(ArchitectureSpace.parameters(of: baseModel, in: searchSpace)) } catch {
            throw .invalidValue(key: "base_model", expected: "an architecture inside the search space (\(error))", found: "'\(baseName)'")
        }
    }

    /// The study directions, one per objective.
    public var directions: [StudyDirection] { objectives.map(\.direction) }

    /// `pruner: KIND`, or a mapping with `kind` and the pruner's settings.
    private static func prunerSetting(_ root: ConfigMapping) throws(ProjectConfigError) -> PrunerSetting {
        let kinds = PrunerSetting.Kind.allCases.map(\.rawValue)
        func kind(_ text: String, key: String) throws(ProjectConfigError) -> PrunerSetting.Kind {
            guard let kind = PrunerSetting.Kind(rawValue: text) else {
                throw .invalidValue(key: key, expected: "one of \(kinds.joined(separator: ", "))", found: "'\(text)'")
            }
            return kind
        }
        guard root.node("pruner")?.mapping != nil else { return PrunerSetting(kind: try kind(try root.string("pruner", default: "none"), key: "pruner")) }
        let node = try root.mapping("pruner")
        try node.allowOnly(["kind", "startup_trials", "min_epochs", "reduction_factor"])
        let defaults = PrunerSetting(kind: try kind(try node.requiredString("kind", expected: "one of \(kinds.joined(separator: ", "))"),
                                                    key: "pruner.kind"))
        return PrunerSetting(kind: defaults.kind,
                             startupTrials: try node.optionalInt("startup_trials", atLeast: 0) ?? defaults.startupTrials,
                             minEpochs: try node.optionalInt("min_epochs", atLeast: 1) ?? defaults.minEpochs,
                             reductionFactor: try node.optionalInt("reduction_factor", atLeast: 2) ?? defaults.reductionFactor)
    }
}

/// Reads one YAML mapping, keeping the key path for error messages.
struct ConfigMapping {
    let path: String
    private let entries: [(key: String, value: Node)]

    init(_ node: Node, key: String) throws(ProjectConfigError) {
        guard let mapping = node.mapping else {
            throw .invalidValue(key: key, expected: "a mapping of keys to values", found: describe(node))
        }
        path = key
        var entries: [(String, Node)] = []
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else { throw .invalidValue(key: key, expected: "text keys", found: describe(keyNode)) }
            entries.append((name, value))
        }
        self.entries = entries
    }

    var keys: [String] { entries.map(\.key) }

    private func full(_ key: String) -> String { path == "(document)" ? key : "\(path).\(key)" }

    func node(_ key: String) -> Node? {
        guard let value = entries.first(where: { $0.key == key })?.value else { return nil }
        if value.null != nil { return nil }
        return value
    }

    func allowOnly(_ known: [String]) throws(ProjectConfigError) {
        for key in keys where !known.contains(key) { throw .unknownKey(key: full(key), known: known) }
    }

    func mapping(_ key: String) throws(ProjectConfigError) -> ConfigMapping {
        guard let value = node(key) else { throw .missingKey(key: full(key), expected: "a mapping") }
        return try ConfigMapping(value, key: full(key))
    }

    func optionalMapping(_ key: String) throws(ProjectConfigError) -> ConfigMapping? {
        guard let value = node(key) else { return nil }
        return try ConfigMapping(value, key: full(key))
    }

    func optionalString(_ key: String) throws(ProjectConfigError) -> String? {
        guard let value = node(key) else { return nil }
        guard case .scalar(let scalar) = value else { throw .invalidValue(key: full(key), expected: "text", found: describe(value)) }
        return scalar.string
    }

    func string(_ key: String, default fallback: String) throws(ProjectConfigError) -> String {
        try optionalString(key) ?? fallback
    }

    func requiredString(_ key: String, expected: String) throws(ProjectConfigError) -> String {
        guard let value = try optionalString(key) else { throw .missingKey(key: full(key), expected: expected) }
        return value
    }

    func stringList(_ key: String, default fallback: [String]) throws(ProjectConfigError) -> [String] {
        guard let value = node(key) else { return fallback }
        guard let sequence = value.sequence else { throw .invalidValue(key: full(key), expected: "a list", found: describe(value)) }
        var result: [String] = []
        for (index, item) in sequence.enumerated() {
            guard case .scalar(let scalar) = item else {
                throw .invalidValue(key: "\(full(key))[\(index)]", expected: "text", found: describe(item))
            }
            result.append(scalar.string)
        }
        return result
    }

    func optionalInt(_ key: String, atLeast minimum: Int) throws(ProjectConfigError) -> Int? {
        guard let value = node(key) else { return nil }
        let expected = minimum == 0 ? "a non-negative integer" : minimum == 1 ? "a positive integer" : "an integer >= \(minimum)"
        guard let number = value.int, number >= minimum else { throw .invalidValue(key: full(key), expected: expected, found: describe(value)) }
        return number
    }

    /// The number at `key` when it is a scalar (nil when it is absent or a mapping).
    func scalarNumber(_ key: String) throws(ProjectConfigError) -> Double? {
        guard let value = node(key), case .scalar = value else { return nil }
        return try optionalNumber(key)
    }

    func optionalNumber(_ key: String, above minimum: Double? = nil) throws(ProjectConfigError) -> Double? {
        guard let value = node(key) else { return nil }
        let expected = minimum.map { "a number above \($0 == 0 ? "0" : String($0))" } ?? "a number"
        guard let number = value.float, number.isFinite, minimum.map({ number > $0 }) ?? true else {
            throw .invalidValue(key: full(key), expected: expected, found: describe(value))
        }
        return number
    }
}

/// A node as an error message shows it.
private func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar): "'\(scalar.string)'"
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    }
}
